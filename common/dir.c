/* SPDX-License-Identifier: Apache-2.0 */
/* Directory reading that tells the end of a directory from an error reading it. */
#include <dirent.h>
#include <errno.h>
#include <string.h>

#include "cm.h"

int cm_readdir(DIR *d, struct dirent **out)
{
	struct dirent *de;

	errno = 0;
	de = readdir(d);
	if (de) {
		*out = de;
		return 1;
	}
	if (errno)
		return cm_err_set(-errno, "reading a directory: %s", strerror(errno));
	return 0;
}
