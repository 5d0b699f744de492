/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jansson prints every real with 17 significant digits, which is exact but
 * shows 0.85 as 0.84999999999999998 in answers, in the materialised
 * metadata.json files and in the event log. The shortest exact form needs at
 * most 17 digits and usually 15; jansson takes one precision per dump, so the
 * document gets the largest its reals need. Nothing is rounded: every real
 * still reads back as the same double.
 */
#include <stdio.h>
#include <stdlib.h>

#include "reg_json.h"

int reg_json_real_digits(double x)
{
	char buf[32];

	for (int p = 15; p < 17; p++) {
		snprintf(buf, sizeof(buf), "%.*g", p, x);
		if (strtod(buf, NULL) == x)
			return p;
	}
	return 17;
}

/* The most digits any real below j needs, or 0 for none. */
static int digits_needed(const json_t *j, int have)
{
	const char *key;
	json_t *v;
	size_t i;

	if (have == 17)
		return have;
	switch (json_typeof(j)) {
	case JSON_REAL: {
		int p = reg_json_real_digits(json_real_value(j));

		return p > have ? p : have;
	}
	case JSON_OBJECT:
		/* jansson's iteration takes a non-const object; nothing is changed. */
		json_object_foreach((json_t *)j, key, v)
			have = digits_needed(v, have);
		return have;
	case JSON_ARRAY:
		json_array_foreach(j, i, v)
			have = digits_needed(v, have);
		return have;
	default:
		return have;
	}
}

size_t reg_json_real_flags(const json_t *j)
{
	int p = j ? digits_needed(j, 0) : 0;

	return p ? JSON_REAL_PRECISION(p) : 0;
}

char *reg_json_dumps(const json_t *j, size_t flags)
{
	return json_dumps(j, flags | reg_json_real_flags(j));
}
