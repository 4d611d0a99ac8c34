/* token.c - a bearer-token file; see token.h. */
#include "token.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tokentap/error.h"

static int refuse(char *out, size_t cap, int rc, char *err, size_t errlen,
		  const char *path, const char *why)
{
	explicit_bzero(out, cap);
	if (err)
		snprintf(err, errlen, "%s: %s", path, why);
	return rc;
}

int tt_token_read(const char *path, char *out, size_t cap, int *loose, char *err,
		  size_t errlen)
{
	struct stat st;
	size_t len = 0;
	ssize_t r;
	int fd;

	if (loose)
		*loose = 0;
	if (cap < TT_TOKEN_BUF)
		return refuse(out, cap, TT_EINVAL, err, errlen, path, "no room");
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return refuse(out, cap, TT_EIO, err, errlen, path, strerror(errno));
	/* one byte past the longest token: a longer file is refused */
	while (len < TT_TOKEN_MAX + 2 &&
	       (r = read(fd, out + len, TT_TOKEN_MAX + 2 - len)) > 0)
		len += (size_t)r;
	if (loose && fstat(fd, &st) == 0)
		*loose = (st.st_mode & 0077) != 0;
	close(fd);
	while (len && (out[len - 1] == '\n' || out[len - 1] == '\r' || out[len - 1] == ' '))
		len--;
	if (len == 0 || len > TT_TOKEN_MAX)
		return refuse(out, cap, TT_EINVAL, err, errlen, path,
			      "expected one line of 1 to 4096 visible characters");
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)out[i] <= 0x20 || (unsigned char)out[i] >= 0x7f)
			return refuse(out, cap, TT_EINVAL, err, errlen, path,
				      "expected one line of visible characters, "
				      "without spaces");
	out[len] = '\0';
	return (int)len;
}
