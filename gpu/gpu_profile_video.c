/* shoal-profile: video frames decoded by ffmpeg (a pipe), kept in memory as packed RGB24. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "gpu/gpu_profile.h"

/* Appends s to the command in single quotes (a ' inside becomes '\''). 0 or -ENAMETOOLONG. */
static int quote_append(char *cmd, size_t len, const char *s)
{
	size_t n = strlen(cmd);
	if (n + 1 >= len)
		return -ENAMETOOLONG;
	cmd[n++] = '\'';
	for (; *s; s++) {
		const char *piece = *s == '\'' ? "'\\''" : NULL;
		size_t k = piece ? 4 : 1;
		if (n + k + 2 >= len)
			return -ENAMETOOLONG;
		if (piece)
			memcpy(cmd + n, piece, k);
		else
			cmd[n] = *s;
		n += k;
	}
	cmd[n++] = '\'';
	cmd[n] = '\0';
	return 0;
}

/* "command exited with N" for a pclose status. */
static const char *status_str(int st, char *buf, size_t len)
{
	if (st == -1)
		snprintf(buf, len, "could not be waited for");
	else if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
		snprintf(buf, len, "could not be started (is it installed?)");
	else if (WIFEXITED(st))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(st));
	else
		snprintf(buf, len, "was killed by signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	return buf;
}

int gpu_prof_frames_read(struct gpu_prof_frames *fr, const char *path, int max, char *err,
			 size_t err_len)
{
	char cmd[8192], why[64];
	struct stat sb;
	memset(fr, 0, sizeof *fr);
	if (max < 1) {
		snprintf(err, err_len, "%s: asked for %d frames", path, max);
		return -EINVAL;
	}
	if (stat(path, &sb) != 0) {
		int e = errno;
		snprintf(err, err_len, "%s: %s", path, strerror(e));
		return -e;
	}

	/* the frame size */
	snprintf(cmd, sizeof cmd, "ffprobe -v error -select_streams v:0 "
		 "-show_entries stream=width,height -of csv=p=0 ");
	if (quote_append(cmd, sizeof cmd, path) ||
	    strlen(cmd) + 16 >= sizeof cmd) {
		snprintf(err, err_len, "%s: path too long", path);
		return -ENAMETOOLONG;
	}
	strcat(cmd, " 2>/dev/null");
	FILE *p = popen(cmd, "r");
	if (!p) {
		int e = errno;
		snprintf(err, err_len, "%s: cannot run ffprobe: %s", path, strerror(e));
		return -e;
	}
	int w = 0, h = 0, got = fscanf(p, "%d,%d", &w, &h);
	int st = pclose(p);
	if (got != 2 || w < 2 || h < 2 || w > 16384 || h > 16384) {
		snprintf(err, err_len, "%s: not a readable video (ffprobe %s)", path,
			 st ? status_str(st, why, sizeof why) : "found no video stream");
		return -EINVAL;
	}

	/* the frames */
	snprintf(cmd, sizeof cmd, "ffmpeg -nostdin -v error -i ");
	if (quote_append(cmd, sizeof cmd, path) || strlen(cmd) + 64 >= sizeof cmd) {
		snprintf(err, err_len, "%s: path too long", path);
		return -ENAMETOOLONG;
	}
	snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd),
		 " -frames:v %d -f rawvideo -pix_fmt rgb24 -", max);
	size_t fsz = (size_t)w * (size_t)h * 3;
	uint8_t *buf = malloc(fsz * (size_t)max);
	if (!buf) {
		snprintf(err, err_len, "%s: no memory for %d frames of %dx%d", path, max, w, h);
		return -ENOMEM;
	}
	p = popen(cmd, "r");
	if (!p) {
		int e = errno;
		free(buf);
		snprintf(err, err_len, "%s: cannot run ffmpeg: %s", path, strerror(e));
		return -e;
	}
	int n = 0;
	while (n < max && fread(buf + fsz * (size_t)n, 1, fsz, p) == fsz)
		n++;
	st = pclose(p);
	if (n == 0 || (st != 0 && n < max)) {
		free(buf);
		snprintf(err, err_len, "%s: ffmpeg %s after %d frames", path,
			 st ? status_str(st, why, sizeof why) : "gave no frame", n);
		return -EIO;
	}
	fr->width = w;
	fr->height = h;
	fr->count = n;
	fr->rgb = buf;
	return 0;
}

void gpu_prof_frames_free(struct gpu_prof_frames *fr)
{
	free(fr->rgb);
	memset(fr, 0, sizeof *fr);
}

struct gpu_image gpu_prof_frame_image(const struct gpu_prof_frames *fr, int i)
{
	struct gpu_image im;
	memset(&im, 0, sizeof im);
	im.fmt = GPU_PIX_RGB24;
	im.width = fr->width;
	im.height = fr->height;
	im.plane[0] = fr->rgb + (size_t)i * (size_t)fr->width * (size_t)fr->height * 3;
	im.stride[0] = fr->width * 3;
	return im;
}
