/*
 * test_common_cgroup.c - container id and pod uid from real-shaped
 * /proc/PID/cgroup texts (v1 and v2; systemd and cgroupfs drivers;
 * containerd, CRI-O, Docker, podman).  The parser takes a whole file, so
 * instead of random splits each text is parsed as given, without its final
 * newline (and not NUL-terminated), and between unparseable lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "tokentap/error.h"
#include "common/cgroup.h"

#define CID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define CID2 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define UID "7f3b2c1d-0a9e-4b8c-9d6e-5f4a3b2c1d0e"
#define UIDU "7f3b2c1d_0a9e_4b8c_9d6e_5f4a3b2c1d0e"

struct ccase {
	const char *text;
	const char *path, *cid, *pod;
};

static const struct ccase cases[] = {
	/* v2, systemd driver, containerd */
	{ "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UIDU
	  ".slice/cri-containerd-" CID ".scope\n",
	  "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UIDU
	  ".slice/cri-containerd-" CID ".scope", CID, UID },
	/* v2, systemd driver, CRI-O, guaranteed QoS (no qos slice) */
	{ "0::/kubepods.slice/kubepods-pod" UIDU ".slice/crio-" CID ".scope\n",
	  "/kubepods.slice/kubepods-pod" UIDU ".slice/crio-" CID ".scope", CID, UID },
	/* v1, cgroupfs driver, containerd/docker: bare ids */
	{ "12:memory:/kubepods/besteffort/pod" UID "/" CID "\n"
	  "11:cpu,cpuacct:/kubepods/besteffort/pod" UID "/" CID "\n"
	  "1:name=systemd:/kubepods/besteffort/pod" UID "/" CID "\n",
	  "/kubepods/besteffort/pod" UID "/" CID, CID, UID },
	/* plain Docker, v1 cgroupfs */
	{ "4:pids:/docker/" CID "\n3:memory:/docker/" CID "\n",
	  "/docker/" CID, CID, "" },
	/* Docker, systemd driver, v2 */
	{ "0::/system.slice/docker-" CID ".scope\n",
	  "/system.slice/docker-" CID ".scope", CID, "" },
	/* CRI-O's conmon is not the container; the pod still counts */
	{ "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UIDU
	  ".slice/crio-conmon-" CID ".scope\n",
	  "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UIDU
	  ".slice/crio-conmon-" CID ".scope", "", UID },
	/* podman: the container's own cgroup has a nested "container" */
	{ "0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" CID
	  ".scope/container\n",
	  "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" CID
	  ".scope/container", CID, "" },
	/* a desktop session: nothing to find, the v2 path is kept */
	{ "0::/user.slice/user-1000.slice/session-2.scope\n",
	  "/user.slice/user-1000.slice/session-2.scope", "", "" },
	/* hybrid: v2 root is useless, v1 names the container */
	{ "0::/\n1:name=systemd:/system.slice/docker-" CID2 ".scope\n"
	  "5:devices:/system.slice/docker-" CID2 ".scope\n",
	  "/system.slice/docker-" CID2 ".scope", CID2, "" },
	/* v1 only, no container: name=systemd wins over a controller */
	{ "3:cpu:/\n1:name=systemd:/user.slice/user-0.slice/session-1.scope\n",
	  "/user.slice/user-0.slice/session-1.scope", "", "" },
	/* static pod: uid is a 32-hex hash */
	{ "0::/kubepods/burstable/pod0123456789abcdef0123456789abcdef/" CID "\n",
	  "/kubepods/burstable/pod0123456789abcdef0123456789abcdef/" CID, CID,
	  "0123456789abcdef0123456789abcdef" },
	/* nested: the innermost container id wins */
	{ "0::/docker/" CID2 "/kubepods/besteffort/pod" UID "/" CID "\n",
	  "/docker/" CID2 "/kubepods/besteffort/pod" UID "/" CID, CID, UID },
	/* near misses: 63 hex, uppercase, bad uid shape */
	{ "0::/docker/" "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n",
	  "/docker/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
	  "", "" },
	{ "0::/kubepods/pod7f3b2c1d0a9e-4b8c-9d6e-5f4a3b2c1d0e1/x\n",
	  "/kubepods/pod7f3b2c1d0a9e-4b8c-9d6e-5f4a3b2c1d0e1/x", "", "" },
};

static void check(const char *text, size_t len, const struct ccase *c)
{
	tt_cgroup_info info;

	assert_int_equal(tt_cgroup_parse(text, len, &info), 0);
	assert_string_equal(info.path, c->path);
	assert_string_equal(info.container_id, c->cid);
	assert_string_equal(info.pod_uid, c->pod);
}

static void test_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct ccase *c = &cases[i];
		char buf[2048];
		size_t n = strlen(c->text);

		/* as given */
		check(c->text, n, c);
		/* without the final newline, not NUL-terminated */
		memcpy(buf, c->text, n);
		buf[n - 1] = 'Z';
		check(buf, n - 1, c);
		/* with unparseable noise lines around it */
		int m = snprintf(buf, sizeof(buf), "garbage\n\n%s::\nx:y\n", c->text);
		check(buf, (size_t)m, c);
	}
}

static void test_empty(void **state)
{
	tt_cgroup_info info;
	(void)state;
	assert_int_equal(tt_cgroup_parse("", 0, &info), TT_EINVAL);
	assert_string_equal(info.path, "");
	assert_int_equal(tt_cgroup_parse("nonsense\n", 9, &info), TT_EINVAL);
	assert_string_equal(info.container_id, "");
}

static void test_long_path_cut(void **state)
{
	char text[1024], want[256];
	tt_cgroup_info info;
	(void)state;
	memset(text, 'a', sizeof(text));
	memcpy(text, "0::/", 4);
	assert_int_equal(tt_cgroup_parse(text, sizeof(text), &info), 0);
	memset(want, 'a', sizeof(want));
	want[0] = '/';
	want[255] = '\0';
	assert_string_equal(info.path, want);
}

static void test_self(void **state)
{
	tt_cgroup_info info;
	(void)state;
	/* Whatever this machine is, reading our own cgroup works. */
	assert_int_equal(tt_cgroup_read_self(&info), 0);
	assert_true(info.path[0] == '/');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_long_path_cut),
		cmocka_unit_test(test_self),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
