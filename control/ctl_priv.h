/* Private to control/: helpers shared by the library's files (not part of ctl.h). */
#ifndef SHOAL_CTL_PRIV_H
#define SHOAL_CTL_PRIV_H

#include <stddef.h>

/* Formats a one-line message into err (when err and errlen are set) and returns rc. */
int ctl_err_set(char *err, size_t errlen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
