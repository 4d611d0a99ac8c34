/*
 * test_probe_procs.c - process identity from /proc/PID/stat.
 *
 * The start time is what tells a live process from a new one that reused
 * its pid.  It is field 22; field 23 (the memory size) changes whenever
 * the process allocates, so reading one field off made every process that
 * allocated look reborn and cut its streams.  Checked on synthetic lines
 * whose comm holds spaces and ')', on every cut of a line, and on real
 * processes: a child that keeps growing its memory keeps its start time,
 * which also agrees with the clock at its fork.
 */
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <setjmp.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "procs.h"
#include "tokentap/error.h"

/* A stat line with the given comm, ppid 4321, starttime 987654321 and a
 * memory size (field 23) of 5555 that must never be taken for it. */
static int make_line(char *buf, size_t cap, const char *comm)
{
	return snprintf(buf, cap,
			"77 (%s) S 4321 77 77 0 -1 4194560 100 0 0 0 1 2 0 0 "
			"20 0 1 0 987654321 5555 416 18446744073709551615 1 2 "
			"3 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n", comm);
}

static void test_fields_counted_from_the_last_paren(void **state)
{
	static const char *const comms[] = {
		"cat", "a b c", "x) S 1 2 3", ") ) )", "((", "n o d e)", "",
		"tab\there", "9 9 9 9 9 9 9 9 9 9 9 9 9 9 9 9 9 9 9 9 9 9",
	};
	char line[512];
	tt_proc_stat st;

	(void)state;
	for (size_t i = 0; i < sizeof(comms) / sizeof(comms[0]); i++) {
		int n = make_line(line, sizeof(line), comms[i]);

		assert_int_equal(tt_procs_parse_stat(line, (size_t)n, &st), 0);
		assert_int_equal(st.ppid, 4321);
		assert_int_equal(st.starttime, 987654321ULL);
	}
}

static void test_every_cut_is_refused_or_exact(void **state)
{
	char line[512];
	int n = make_line(line, sizeof(line), "a) b");
	const char *f22 = strstr(line, "987654321");
	size_t need = (size_t)(f22 - line) + strlen("987654321") + 1;
	tt_proc_stat st;

	(void)state;
	for (size_t len = 0; len <= (size_t)n; len++) {
		/* a private copy of exactly len bytes: ASan sees any overread */
		char *cut = malloc(len ? len : 1);
		int r;

		memcpy(cut, line, len);
		r = tt_procs_parse_stat(cut, len, &st);
		if (len < need) {
			assert_int_equal(r, TT_EPROTO);
		} else {
			assert_int_equal(r, 0);
			assert_int_equal(st.starttime, 987654321ULL);
		}
		free(cut);
	}
}

static void test_malformed_lines(void **state)
{
	static const char *const bad[] = {
		"77 cat S 1",                    /* no parentheses */
		"77 (cat) S x 77",               /* ppid not a number */
		"77 (cat) S 1 77 77 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 "
		"12a45 5555 ",                   /* starttime not a number */
		"77 (cat) S 1 77 77 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 "
		"99999999999999999999999 5 ",    /* starttime overflows */
	};
	tt_proc_stat st;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(tt_procs_parse_stat(bad[i], strlen(bad[i]), &st),
				 TT_EPROTO);
}

static double uptime_s(void)
{
	FILE *f = fopen("/proc/uptime", "r");
	double up = 0;

	assert_non_null(f);
	assert_int_equal(fscanf(f, "%lf", &up), 1);
	fclose(f);
	return up;
}

/* The memory size of pid (field 23), read without the code under test. */
static unsigned long long vsize_of(pid_t pid)
{
	char fn[64], buf[1024], *p;
	unsigned long long v = 0;
	FILE *f;

	snprintf(fn, sizeof(fn), "/proc/%d/stat", (int)pid);
	f = fopen(fn, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	p = strrchr(buf, ')');
	assert_non_null(p);
	/* after the loop p is the space before field 23 */
	for (int field = 3; field <= 23; field++) {
		p = strchr(p + 1, ' ');
		assert_non_null(p);
	}
	v = strtoull(p + 1, NULL, 10);
	return v;
}

/*
 * A real child that grows its memory while we watch: its start time
 * stays put, the memory size moves, and the start time agrees with the
 * clock at its fork.
 */
static void test_a_growing_process_keeps_its_start(void **state)
{
	long hz = sysconf(_SC_CLK_TCK);
	int go[2];
	double before = uptime_s(), after;
	unsigned long long vs1, vs2;
	uint64_t s1, s2;
	pid_t pid;
	char c;

	(void)state;
	assert_int_equal(pipe(go), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* grow by 4 MiB each time the parent asks */
		close(go[1]);
		while (read(go[0], &c, 1) == 1) {
			char *m = mmap(NULL, 4 << 20, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

			if (m == MAP_FAILED)
				_exit(1);
			memset(m, 1, 4 << 20);
		}
		_exit(0);
	}
	close(go[0]);
	after = uptime_s();
	s1 = tt_procs_starttime(pid);
	vs1 = vsize_of(pid);
	assert_true(s1 > 0);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(write(go[1], "g", 1), 1);
		usleep(20000);
		assert_int_equal(tt_procs_starttime(pid), s1);
	}
	s2 = tt_procs_starttime(pid);
	vs2 = vsize_of(pid);
	assert_true(vs2 > vs1);           /* the memory really moved */
	assert_int_equal(s2, s1);         /* the identity did not */
	assert_true(s1 != vs1 && s1 != vs2);
	/* forked between `before` and `after`: allow a tick each side */
	assert_true((double)s1 / (double)hz >= before - 2.0 / (double)hz);
	assert_true((double)s1 / (double)hz <= after + 2.0 / (double)hz);
	close(go[1]);
	waitpid(pid, NULL, 0);
	/* gone: unreadable, 0 */
	assert_int_equal(tt_procs_starttime(pid), 0);
}

static void test_self_is_parsed(void **state)
{
	tt_proc_stat st;

	(void)state;
	assert_int_equal(tt_procs_read_stat((int)getpid(), &st), 0);
	assert_int_equal(st.ppid, (uint32_t)getppid());
	assert_true(st.starttime > 0);
	assert_true(st.starttime != vsize_of(getpid()));
}

static uint32_t gone_seen[8];
static int ngone;

static void on_gone(uint32_t tgid, void *arg)
{
	(void)arg;
	if (ngone < 8)
		gone_seen[ngone++] = tgid;
}

/* The sweep forgets a process that exited, not one that allocated. */
static void test_sweep_tells_exit_from_growth(void **state)
{
	tt_procs *p = tt_procs_new(0);
	int go[2];
	pid_t grower, quitter;
	char c;

	(void)state;
	assert_non_null(p);
	assert_int_equal(pipe(go), 0);
	grower = fork();
	if (grower == 0) {
		close(go[1]);
		while (read(go[0], &c, 1) == 1) {
			char *m = mmap(NULL, 8 << 20, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

			if (m != MAP_FAILED)
				memset(m, 1, 8 << 20);
		}
		_exit(0);
	}
	close(go[0]);
	quitter = fork();
	if (quitter == 0) {
		pause();
		_exit(0);
	}
	assert_true(grower > 0 && quitter > 0);
	assert_int_equal(tt_procs_get(p, (uint32_t)grower)->tgid, (uint32_t)grower);
	assert_int_equal(tt_procs_get(p, (uint32_t)quitter)->tgid, (uint32_t)quitter);
	for (int i = 0; i < 4; i++)
		assert_int_equal(write(go[1], "g", 1), 1);
	usleep(50000);
	kill(quitter, SIGKILL);
	waitpid(quitter, NULL, 0);
	ngone = 0;
	/* one sweep may come before the exit event: the second decides */
	tt_procs_sweep(p, on_gone, NULL);
	assert_int_equal(ngone, 0);
	tt_procs_sweep(p, on_gone, NULL);
	assert_int_equal(ngone, 1);
	assert_int_equal(gone_seen[0], (uint32_t)quitter);
	close(go[1]);
	waitpid(grower, NULL, 0);
	tt_procs_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fields_counted_from_the_last_paren),
		cmocka_unit_test(test_every_cut_is_refused_or_exact),
		cmocka_unit_test(test_malformed_lines),
		cmocka_unit_test(test_self_is_parsed),
		cmocka_unit_test(test_a_growing_process_keeps_its_start),
		cmocka_unit_test(test_sweep_tells_exit_from_growth),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
