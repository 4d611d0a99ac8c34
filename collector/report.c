/* report.c - the human view of a usage roll-up, see report.h. */
#include "report.h"

#include <math.h>
#include <string.h>

#include <cJSON.h>

#include "tokentap/error.h"

void tt_report_tokens(double n, char *buf, size_t cap)
{
	if (n < 1000)
		snprintf(buf, cap, "%.0f", n);
	else if (n < 1e6)
		snprintf(buf, cap, "%.1fk", n / 1e3);
	else if (n < 1e9)
		snprintf(buf, cap, "%.1fM", n / 1e6);
	else if (n < 1e12)
		snprintf(buf, cap, "%.1fB", n / 1e9);
	else if (n < 1e15)
		snprintf(buf, cap, "%.1fT", n / 1e12);
	else  /* sums may pass 2^63 (usage.h): still one short cell */
		snprintf(buf, cap, "%.1e", n);
}

void tt_report_usd(double v, char *buf, size_t cap)
{
	if (v == 0)
		snprintf(buf, cap, "$0");
	else if (fabs(v) >= 1)
		snprintf(buf, cap, "$%.2f", v);
	else if (fabs(v) >= 0.01)
		snprintf(buf, cap, "$%.4f", v);
	else
		snprintf(buf, cap, "$%.6f", v);
}

static double num(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static int is_null(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return !v || cJSON_IsNull(v);
}

/* Print s cut or padded to w display columns (UTF-8 aware, no wide chars). */
static void cell(FILE *out, const char *s, int w)
{
	int cols = 0;
	const char *p = s;

	while (*p && cols < w) {
		const char *start = p;

		p++;
		while ((*p & 0xc0) == 0x80)
			p++;
		if (cols == w - 1 && *p) {
			fputs("…", out);
			cols++;
			break;
		}
		fwrite(start, 1, (size_t)(p - start), out);
		cols++;
	}
	for (; cols < w; cols++)
		fputc(' ', out);
}

static void bar(FILE *out, double share, int unicode)
{
	int n = (int)lround(share * 20);

	for (int i = 0; i < n; i++)
		fputs(unicode ? "█" : "#", out);
}

int tt_report_render(const char *json, size_t len, const struct tt_report_opts *o, FILE *out,
		     char *err, size_t errlen)
{
	cJSON *root = cJSON_ParseWithLength(json, len);
	const cJSON *rows, *total, *by, *row, *since, *until;
	double total_cost, cum = 0, other_cost = 0, other_calls = 0, other_in = 0, other_out = 0;
	double unpriced, savings, cached, blocked, other_unpriced = 0;
	int nrows, shown = 0, other = 0;
	char a[32], b[32], c[32], d[32], hdr[32];
	int rc = 0;

	if (!root) {
		snprintf(err, errlen, "the collector's answer is not JSON");
		return TT_EINVAL;
	}
	rows = cJSON_GetObjectItemCaseSensitive(root, "rows");
	total = cJSON_GetObjectItemCaseSensitive(root, "total");
	by = cJSON_GetObjectItemCaseSensitive(root, "by");
	if (!cJSON_IsArray(rows) || !cJSON_IsObject(total) || !cJSON_IsString(by)) {
		snprintf(err, errlen, "the collector's answer is not a usage roll-up");
		rc = TT_EINVAL;
		goto out;
	}
	since = cJSON_GetObjectItemCaseSensitive(root, "since");
	until = cJSON_GetObjectItemCaseSensitive(root, "until");
	total_cost = num(total, "cost_usd");
	unpriced = num(total, "unpriced_calls");
	savings = num(total, "cache_savings_usd");
	cached = num(total, "cache_read_tokens");
	blocked = num(total, "blocked_calls");
	nrows = cJSON_GetArraySize(rows);

	fprintf(out, "Where the money goes, by %s", by->valuestring);
	if (cJSON_IsString(since) || cJSON_IsString(until))
		fprintf(out, " (%s to %s)", cJSON_IsString(since) ? since->valuestring : "start",
			cJSON_IsString(until) ? until->valuestring : "now");
	fprintf(out, "\n\n");
	if (nrows == 0) {
		fprintf(out, "  No calls recorded%s.\n",
			cJSON_IsString(since) || cJSON_IsString(until) ? " in this window" : " yet");
		goto out;
	}
	snprintf(hdr, sizeof(hdr), "%s", by->valuestring);
	for (char *p = hdr; *p; p++)
		*p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
	fprintf(out, "  %3s  ", "#");
	cell(out, hdr, 28);
	fprintf(out, " %7s %8s %8s %12s %6s %6s\n", "CALLS", "INPUT", "OUTPUT", "COST", "SHARE",
		"CUM");
	cJSON_ArrayForEach(row, rows) {
		const cJSON *key = cJSON_GetObjectItemCaseSensitive(row, "key");
		double cost = num(row, "cost_usd"), share = total_cost > 0 ? cost / total_cost : 0;
		double rup = num(row, "unpriced_calls"), rblk = num(row, "blocked_calls");

		if (o->top > 0 && shown >= o->top) {
			other++;
			other_cost += cost;
			other_calls += num(row, "calls");
			other_in += num(row, "input_tokens");
			other_out += num(row, "output_tokens");
			other_unpriced += rup;
			continue;
		}
		shown++;
		cum += share;
		tt_report_tokens(num(row, "input_tokens"), a, sizeof(a));
		tt_report_tokens(num(row, "output_tokens"), b, sizeof(b));
		if (is_null(row, "cost_usd"))
			snprintf(c, sizeof(c), "unpriced");
		else
			tt_report_usd(cost, c, sizeof(c));
		fprintf(out, "  %3d  ", shown);
		cell(out, cJSON_IsString(key) ? key->valuestring : "(none)", 28);
		fprintf(out, " %7.0f %8s %8s %12s %5.1f%% %5.1f%%  ", num(row, "calls"), a, b, c,
			share * 100, cum * 100);
		bar(out, share, o->unicode);
		if (rup > 0)
			fprintf(out, "%s(%.0f unpriced)", share > 0 ? " " : "", rup);
		if (rblk > 0)
			fprintf(out, "%s(%.0f blocked)", share > 0 || rup > 0 ? " " : "", rblk);
		fputc('\n', out);
	}
	if (other) {
		char label[64];

		tt_report_tokens(other_in, a, sizeof(a));
		tt_report_tokens(other_out, b, sizeof(b));
		tt_report_usd(other_cost, c, sizeof(c));
		snprintf(label, sizeof(label), "(%d more)", other);
		fprintf(out, "  %3s  ", "");
		cell(out, label, 28);
		fprintf(out, " %7.0f %8s %8s %12s %5.1f%% %5.1f%%", other_calls, a, b, c,
			total_cost > 0 ? other_cost / total_cost * 100 : 0, total_cost > 0 ? 100.0 : 0);
		if (other_unpriced > 0)
			fprintf(out, "  (%.0f unpriced)", other_unpriced);
		fputc('\n', out);
	}
	tt_report_tokens(num(total, "input_tokens"), a, sizeof(a));
	tt_report_tokens(num(total, "output_tokens"), b, sizeof(b));
	tt_report_usd(total_cost, c, sizeof(c));
	fprintf(out, "  %3s  ", "");
	cell(out, "total", 28);
	fprintf(out, " %7.0f %8s %8s %12s\n\n", num(total, "calls"), a, b, c);

	/* The head: how few rows make 80% of the money. */
	if (total_cost > 0) {
		double acc = 0;
		int k = 0;

		cJSON_ArrayForEach(row, rows) {
			acc += num(row, "cost_usd");
			k++;
			if (acc >= 0.8 * total_cost)
				break;
		}
		fprintf(out, "  %d of %d %s%s make%s %.0f%% of the cost.\n", k, nrows,
			by->valuestring, nrows == 1 ? "" : "s", k == 1 ? "s" : "", acc / total_cost * 100);
	}
	if (cached > 0) {
		tt_report_tokens(cached, d, sizeof(d));
		tt_report_usd(savings, c, sizeof(c));
		fprintf(out, "  Cache savings realised: %s (%s input tokens served from the prompt "
			"cache).\n", c, d);
	}
	if (blocked > 0)
		fprintf(out, "  %.0f call%s blocked by a budget (enforce mode): not in CALLS, "
			"never sent to the provider.\n", blocked, blocked == 1 ? "" : "s");
	if (unpriced > 0)
		fprintf(out, "  ! %.0f call%s unpriced: the model is not in the price table or the "
			"call carried no usage;\n    their cost is NOT in the figures above "
			"(add prices with tokentapd --config).\n", unpriced, unpriced == 1 ? "" : "s");
out:
	cJSON_Delete(root);
	return rc;
}
