/*
 * unhooked.c - programs whose TLS the probe cannot see; see unhooked.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unhooked.h"

struct tt_unhooked {
	char *paths[TT_UNHOOKED_MAX]; /* in the order seen */
	size_t n;
	uint64_t procs;
	int full_said; /* "more programs" logged once */
};

tt_unhooked *tt_unhooked_new(void)
{
	return calloc(1, sizeof(tt_unhooked));
}

void tt_unhooked_free(tt_unhooked *u)
{
	if (!u)
		return;
	for (size_t i = 0; i < u->n; i++)
		free(u->paths[i]);
	free(u);
}

static int known(const tt_unhooked *u, const char *exe)
{
	/* a linear look: reports come once a process, at most */
	for (size_t i = 0; i < u->n; i++)
		if (strcmp(u->paths[i], exe) == 0)
			return 1;
	return 0;
}

int tt_unhooked_note(tt_unhooked *u, const char *exe, uint32_t pid,
		     const char *comm, unsigned port, const char *why)
{
	char *copy;

	u->procs++;
	if (!exe || !exe[0])
		exe = "(unknown executable)";
	if (known(u, exe))
		return 0;
	if (u->n == TT_UNHOOKED_MAX || !(copy = strdup(exe))) {
		if (!u->full_said)
			fprintf(stderr, "tokentap-probe: more programs make TLS "
				"connections the probe cannot see; counted, no "
				"longer named\n");
		u->full_said = 1;
		return 0;
	}
	u->paths[u->n++] = copy;
	fprintf(stderr, "tokentap-probe: %s (pid %u, %s) makes TLS connections "
		"(port %u) but nothing in it can be hooked%s%s%s: its LLM calls "
		"are not seen\n", exe, pid, comm && comm[0] ? comm : "?", port,
		why && why[0] ? " (" : "", why && why[0] ? why : "",
		why && why[0] ? ")" : "");
	return 1;
}

uint64_t tt_unhooked_procs(const tt_unhooked *u)
{
	return u ? u->procs : 0;
}

size_t tt_unhooked_programs(const tt_unhooked *u)
{
	return u ? u->n : 0;
}

size_t tt_unhooked_list(const tt_unhooked *u, const char **paths, size_t cap)
{
	size_t n = 0;

	for (; u && n < u->n && n < cap && n < TT_UNHOOKED_LIST; n++)
		paths[n] = u->paths[n];
	return n;
}
