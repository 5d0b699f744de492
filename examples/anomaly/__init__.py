# SPDX-License-Identifier: Apache-2.0
"""Shared by the training notebook, the pipeline's validation step and the serving step."""
