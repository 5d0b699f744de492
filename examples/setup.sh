#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Sets up what the README's quick start and walk-through start from:
#   examples/setup.sh demo STORE         a model tree for `modelfs init` to adopt
#                                        (./dev demo uses it)
#   examples/setup.sh walkthrough DIR    in DIR: the daemon's token file `tokens`
#                                        (alice admin, tekton writer, release admin,
#                                        dashboard reader), one file per token for the
#                                        client (alice.token, ...), policy.json, the
#                                        versions' metadata (v1.json ... v3.json) and a
#                                        git repository ml-platform/ for the version tags;
#                                        and the empty store/ and mnt/ for modelfs serve
# Neither removes anything: the target must not exist yet (or be an empty directory).
set -euo pipefail

usage() {
	sed -n '3,13p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

fresh_dir() {
	if [ -e "$1" ] && [ -n "$(ls -A "$1")" ]; then
		echo "examples/setup.sh: $1 exists and is not empty; choose another directory" >&2
		exit 1
	fi
	mkdir -p "$1"
}

demo() {
	local store=$1
	fresh_dir "$store"
	mkdir -p "$store"/anomaly-detector/{v1,v2} "$store"/lstm-autoencoder/v1
	printf 'isolation-forest v1\n' > "$store/anomaly-detector/v1/model.pkl"
	printf 'isolation-forest v2\n' > "$store/anomaly-detector/v2/model.pkl"
	cat > "$store/anomaly-detector/v1/metadata.json" <<'JSON'
{"model_name": "anomaly-detector", "version": "v1", "git_commit": "3f2a9c1",
 "training_data": {"start_date": "2026-10-01", "end_date": "2026-10-31", "rows": 44640},
 "training_data_hash": "sha256:5e1c", "hyperparameters": {"n_estimators": 100, "contamination": 0.05},
 "performance_metrics": {"accuracy": 0.91, "precision": 0.88, "recall": 0.86, "f1_score": 0.87},
 "validation_status": "passed"}
JSON
	# A second version that passes the gate: the quick start promotes it.
	cat > "$store/anomaly-detector/v2/metadata.json" <<'JSON'
{"model_name": "anomaly-detector", "version": "v2", "git_commit": "8d41e07",
 "training_data": {"start_date": "2026-10-08", "end_date": "2026-11-07", "rows": 44640},
 "training_data_hash": "sha256:a9f3", "hyperparameters": {"n_estimators": 150, "contamination": 0.05},
 "performance_metrics": {"accuracy": 0.93, "precision": 0.9, "recall": 0.88, "f1_score": 0.89},
 "validation_status": "passed"}
JSON
	printf 'lstm v1\n' > "$store/lstm-autoencoder/v1/model.pt"
	printf 'scaler\n' > "$store/lstm-autoencoder/v1/scaler.pkl"
	ln -s v1 "$store/anomaly-detector/current"
	echo "wrote a demo tree in $store: anomaly-detector v1 (current) and v2, lstm-autoencoder v1"
}

secret() {
	head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'
}

# metadata NAME VERSION COMMIT ACCURACY: a version's record as the notebook writes it.
metadata() {
	cat <<JSON
{"model_name": "anomaly-detector", "version": "$1", "git_commit": "$2",
 "training_notebook": "examples/notebooks/train_isolation_forest.ipynb",
 "training_data": {"start_date": "2026-10-01", "end_date": "2026-10-31", "rows": 44640},
 "training_data_hash": "sha256:b58b4aa3", "hyperparameters": {"n_estimators": $4},
 "performance_metrics": {"accuracy": $3, "f1_score": $3}}
JSON
}

walkthrough() {
	local dir=$1 name role
	fresh_dir "$dir"
	mkdir "$dir/store" "$dir/mnt"
	umask 077
	{
		echo "# name role secret (modelfs serve --token-file)"
		for name in alice:admin tekton:writer release:admin dashboard:reader; do
			role=${name#*:}
			name=${name%%:*}
			secret > "$dir/$name.token"
			echo "$name $role $(cat "$dir/$name.token")"
		done
	} > "$dir/tokens"
	umask 022
	cat > "$dir/policy.json" <<'JSON'
{"validation_status": "passed",
 "metrics": {"performance_metrics.accuracy": {"min": 0.85}},
 "max_total_size": 104857600,
 "required_fields": ["git_commit", "training_notebook", "training_data", "training_data_hash"]}
JSON
	git init -q -b main "$dir/ml-platform"
	git -C "$dir/ml-platform" -c user.name="Alice" -c user.email=alice@example.com \
		commit -q --allow-empty -m "train: isolation forest, October"
	metadata v1 "$(git -C "$dir/ml-platform" rev-parse HEAD)" 0.91 100 > "$dir/v1.json"
	git -C "$dir/ml-platform" -c user.name="Alice" -c user.email=alice@example.com \
		commit -q --allow-empty -m "retrain: window to 2026-11-07, 150 trees"
	metadata v2 "$(git -C "$dir/ml-platform" rev-parse HEAD)" 0.93 150 > "$dir/v2.json"
	metadata v3 "$(git -C "$dir/ml-platform" rev-parse HEAD)" 0.64 150 > "$dir/v3.json"
	echo "wrote $dir: tokens (alice, tekton, release, dashboard) and a .token file each," \
		"policy.json, v1.json v2.json v3.json, the git repository ml-platform, store/ and mnt/"
}

[ $# -eq 2 ] || usage
case "$1" in
demo) demo "$2" ;;
walkthrough) walkthrough "$2" ;;
*) usage ;;
esac
