/* tests/unit/test_cls_data.c — classification data sets and metrics
 * (src/train/cls_data.c, src/train/cls_metrics.c).
 *
 * Real files from ../shared: the SMS Spam Collection (headerless
 * label<TAB>text: 4574 rows, 3957 ham, 617 spam) and SST-2 train/dev (headers
 * label<TAB>sentence / label<TAB>content: 67349 rows 29780/37569, 872 rows
 * 428/444), encoded with the stories260K tokenizer (llama2.c tok512.bin, SPM
 * with BOS) and, for the small files, GPT-2's (byte-level, no BOS); the ids
 * are checked against ct_tokenizer_encode of the same text. Small files
 * written to a temporary directory: JSONL with string / integer labels and
 * the other text keys, a JSON array, CSV with quotes, "" and newlines inside
 * quotes (line numbers after them), CRLF, every error case with its message,
 * skip counts, truncation, the stratified split, and metrics on a
 * hand-computed example (accuracy 6/8, macro-F1 34/45) with the printed report.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "ctune/classify.h"
#include "ctune/ctune.h"

static char dir[64];
static char shared[4096];

static const char *file(const char *name, const char *body) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(1); }
    fputs(body, f);
    fclose(f);
    return path;
}

#define CHECK_HAS(s, sub) do { const char *_s = (s); ct_test_checks++; if (!strstr(_s, (sub))) { ct_test_fails++; \
    fprintf(stderr, "%s:%d: \"%s\" not in \"%s\"\n", __FILE__, __LINE__, (sub), _s); } } while (0)

/* Example e holds the encoding of text (BOS as the tokenizer adds it), cut to max_len (0: no limit). */
static int same_text(ct_cls_example e, const ct_tokenizer *t, const char *text, int max_len) {
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK_OK(ct_tokenizer_encode(t, text, strlen(text), ct_tokenizer_adds_bos(t) ? CT_TOK_ADD_BOS : 0, &ids, &n));
    int trunc = max_len > 0 && n > (size_t)max_len;
    if (trunc) n = (size_t)max_len;
    int ok = (size_t)e.n == n && e.truncated == trunc;
    for (size_t i = 0; ok && i < n; i++) ok = e.ids[i] == ids[i];
    free(ids);
    if (!ok) fprintf(stderr, "example (line %d, %d ids) differs from the encoding of \"%s\"\n", e.line, e.n, text);
    return ok;
}

static ct_cls_dataset *load(const char *path, const ct_tokenizer *t, const ct_cls_opts *o) {
    ct_cls_dataset *ds = NULL;
    CHECK_OK(ct_cls_dataset_load(path, t, o, &ds));
    return ds;
}

/* The load fails with CT_ERR_FORMAT (or want) and a message containing msg. */
static void load_fails(const char *path, const ct_tokenizer *t, const ct_cls_opts *o, const char *const *labels,
                       int nl, ct_status want, const char *msg) {
    ct_cls_dataset *ds = (ct_cls_dataset *)1;
    ct_status st = labels ? ct_cls_dataset_load_labels(path, t, o, labels, nl, &ds) : ct_cls_dataset_load(path, t, o, &ds);
    CHECK_EQ_INT(st, want);
    CHECK(ds == NULL);
    CHECK_HAS(ct_errmsg(), msg);
    ct_cls_dataset_free(ds == (ct_cls_dataset *)1 ? NULL : ds);
}

static void quiet(int level, const char *msg, void *ud) { (void)level; (void)msg; (void)ud; }

/* ---- real files ------------------------------------------------------------------------- */

static void test_sms(const ct_tokenizer *t) {
    char p[4200], sum[512];
    snprintf(p, sizeof p, "%s/data/sms-spam/SMSSpamCollection", shared);
    ct_cls_dataset *ds = load(p, t, NULL);
    if (!ds) return;
    CHECK_EQ_INT(ct_cls_dataset_size(ds), 4574);
    CHECK_EQ_INT(ct_cls_dataset_num_labels(ds), 2);
    CHECK(!strcmp(ct_cls_dataset_label(ds, 0), "ham") && !strcmp(ct_cls_dataset_label(ds, 1), "spam"));
    CHECK_EQ_INT(ct_cls_dataset_class_count(ds, 0), 3957);
    CHECK_EQ_INT(ct_cls_dataset_class_count(ds, 1), 617);
    CHECK_EQ_INT(ct_cls_dataset_format(ds), CT_CLS_TSV);
    CHECK_EQ_INT(ct_cls_dataset_has_header(ds), 0);
    CHECK_EQ_INT(ct_cls_dataset_label_index(ds, "spam"), 1);
    CHECK_EQ_INT(ct_cls_dataset_label_index(ds, "eggs"), -1);
    ct_cls_example e = ct_cls_dataset_get(ds, 0);
    CHECK(e.line == 1 && e.label == 0);
    CHECK(same_text(e, t, "Go until jurong point, crazy.. Available only in bugis n great world la e buffet... Cine there "
                          "got amore wat...", 0));
    /* TSV quotes are text: line 486 is a message in quotes */
    e = ct_cls_dataset_get(ds, 485);
    CHECK(e.line == 486 && e.label == 0);
    CHECK(same_text(e, t, "\"Pete can you please ring meive hardly gotany credit\"", 0));
    CHECK_EQ_INT(ct_cls_dataset_get(ds, 4573).line, 4574);
    ct_cls_stats st;
    ct_cls_dataset_stats(ds, &st);
    CHECK(st.n_truncated == 0 && st.n_bad_rows == 0 && st.n_empty_classes == 0 && st.n_labels == 2);
    ct_cls_dataset_summary(ds, sum, sizeof sum);
    CHECK_HAS(sum, "4574 examples (tsv, no header: label<TAB>text), 2 labels (ham 3957, spam 617), ");
    printf("sms: %s\n", sum);

    /* stratified split: round(0.2 * n_c) of each class */
    ct_cls_dataset *tr = NULL, *va = NULL, *tr2 = NULL, *va2 = NULL;
    CHECK_OK(ct_cls_dataset_split(ds, 0.2, 7, &tr, &va));
    CHECK_OK(ct_cls_dataset_split(ds, 0.2, 7, &tr2, &va2));
    if (tr && va && tr2 && va2) {
        CHECK_EQ_INT(ct_cls_dataset_class_count(va, 0), 791);
        CHECK_EQ_INT(ct_cls_dataset_class_count(va, 1), 123);
        CHECK_EQ_INT(ct_cls_dataset_class_count(tr, 0), 3957 - 791);
        CHECK_EQ_INT(ct_cls_dataset_class_count(tr, 1), 617 - 123);
        CHECK_EQ_INT(ct_cls_dataset_size(va), 914);
        CHECK_EQ_INT(ct_cls_dataset_num_labels(va), 2);
        int same = ct_cls_dataset_size(va2) == 914, ordered = 1;
        for (size_t i = 0; same && i < 914; i++) same = ct_cls_dataset_get(va, i).line == ct_cls_dataset_get(va2, i).line;
        CHECK(same);
        /* disjoint, covering, file order kept, examples copied intact */
        uint8_t *seen = calloc(4575, 1);
        int ok = 1;
        for (int s = 0; s < 2; s++) {
            const ct_cls_dataset *d = s ? va : tr;
            for (size_t i = 0; i < ct_cls_dataset_size(d); i++) {
                ct_cls_example x = ct_cls_dataset_get(d, i), y = ct_cls_dataset_get(ds, (size_t)x.line - 1);
                ok &= !seen[x.line]++ && x.label == y.label && x.n == y.n && !memcmp(x.ids, y.ids, (size_t)x.n * 4);
                if (i) ordered &= ct_cls_dataset_get(d, i - 1).line < x.line;
            }
        }
        CHECK(ok && ordered);
        free(seen);
        ct_cls_dataset_free(tr2);
        ct_cls_dataset_free(va2);
        CHECK_OK(ct_cls_dataset_split(ds, 0.2, 8, &tr2, &va2));
        int differs = 0;
        for (size_t i = 0; va2 && i < 914; i++) differs |= ct_cls_dataset_get(va, i).line != ct_cls_dataset_get(va2, i).line;
        CHECK(differs);
    }
    ct_cls_dataset_free(tr);
    ct_cls_dataset_free(va);
    ct_cls_dataset_free(tr2);
    ct_cls_dataset_free(va2);
    CHECK_EQ_INT(ct_cls_dataset_split(ds, 1.0, 1, &tr, &va), CT_ERR_RANGE);
    CHECK_OK(ct_cls_dataset_split(ds, 0.0, 1, &tr, &va));
    CHECK(ct_cls_dataset_size(tr) == 4574 && ct_cls_dataset_size(va) == 0);
    ct_cls_dataset_free(tr);
    ct_cls_dataset_free(va);

    /* truncation on the real file: counted, flagged, the start kept */
    ct_cls_opts o = {.max_len = 8};
    ct_cls_dataset *dt = load(p, t, &o);
    if (dt) {
        size_t trunc = 0, flagged = 0;
        int ok = 1;
        for (size_t i = 0; i < ct_cls_dataset_size(dt); i++) {
            ct_cls_example a = ct_cls_dataset_get(dt, i), b = ct_cls_dataset_get(ds, i);
            trunc += b.n > 8;
            flagged += a.truncated;
            ok &= a.n == (b.n < 8 ? b.n : 8) && a.truncated == (b.n > 8) && !memcmp(a.ids, b.ids, (size_t)a.n * 4);
        }
        ct_cls_dataset_stats(dt, &st);
        CHECK(ok && trunc > 1000);
        CHECK_EQ_INT(st.n_truncated, trunc);
        CHECK_EQ_INT(flagged, trunc);
        CHECK_EQ_INT(st.max_tokens, 8);
        ct_cls_dataset_summary(dt, sum, sizeof sum);
        char want[64];
        snprintf(want, sizeof want, ", %zu truncated", trunc);
        CHECK_HAS(sum, want);
        ct_cls_dataset_free(dt);
    }
    ct_cls_dataset_free(ds);
}

static void test_sst2(const ct_tokenizer *t) {
    char p[4200], sum[512];
    snprintf(p, sizeof p, "%s/data/sst2/train.tsv", shared);
    ct_cls_dataset *tr = load(p, t, NULL);
    if (!tr) return;
    CHECK_EQ_INT(ct_cls_dataset_size(tr), 67349);
    CHECK_EQ_INT(ct_cls_dataset_num_labels(tr), 2);
    CHECK(!strcmp(ct_cls_dataset_label(tr, 0), "0") && !strcmp(ct_cls_dataset_label(tr, 1), "1"));
    CHECK_EQ_INT(ct_cls_dataset_class_count(tr, 0), 29780);
    CHECK_EQ_INT(ct_cls_dataset_class_count(tr, 1), 37569);
    CHECK_EQ_INT(ct_cls_dataset_has_header(tr), 1);
    ct_cls_example e = ct_cls_dataset_get(tr, 0);
    CHECK(e.line == 2 && e.label == 0);
    CHECK(same_text(e, t, "hide new secretions from the parental units", 0)); /* CRLF: the \r is not text */
    ct_cls_dataset_summary(tr, sum, sizeof sum);
    CHECK_HAS(sum, "67349 examples (tsv, header), 2 labels (0 29780, 1 37569)");
    printf("sst2 train: %s\n", sum);

    snprintf(p, sizeof p, "%s/data/sst2/dev.tsv", shared);
    ct_cls_dataset *dev = NULL;
    CHECK_OK(ct_cls_dataset_load_labels(p, t, NULL, ct_cls_dataset_labels(tr), ct_cls_dataset_num_labels(tr), &dev));
    if (dev) {
        CHECK_EQ_INT(ct_cls_dataset_size(dev), 872);
        CHECK_EQ_INT(ct_cls_dataset_class_count(dev, 0), 428);
        CHECK_EQ_INT(ct_cls_dataset_class_count(dev, 1), 444);
        e = ct_cls_dataset_get(dev, 0);
        CHECK(e.line == 2 && e.label == 0 && same_text(e, t, "one long string of cliches .", 0));
    }
    ct_cls_dataset_free(dev);
    /* the dev set against a reversed label set: indices follow the given order */
    const char *rev[2] = {"1", "0"};
    CHECK_OK(ct_cls_dataset_load_labels(p, t, NULL, rev, 2, &dev));
    if (dev) CHECK(ct_cls_dataset_get(dev, 0).label == 1 && ct_cls_dataset_class_count(dev, 0) == 444);
    ct_cls_dataset_free(dev);
    ct_cls_dataset_free(tr);
}

/* ---- small files -------------------------------------------------------------------------- */

static void test_jsonl(const ct_tokenizer *t) {
    ct_cls_dataset *ds = load(file("s.jsonl", "{\"text\": \"good film\", \"label\": \"pos\"}\n\n"
                                              "{\"sentence\": \"bad film\", \"label\": \"neg\"}\r\n"
                                              "{\"content\": \"fine\", \"label\": \"pos\", \"id\": 3}\n"), t, NULL);
    if (ds) {
        CHECK_EQ_INT(ct_cls_dataset_size(ds), 3);
        CHECK(!strcmp(ct_cls_dataset_label(ds, 0), "neg") && !strcmp(ct_cls_dataset_label(ds, 1), "pos"));
        ct_cls_example e = ct_cls_dataset_get(ds, 1);
        CHECK(e.line == 3 && e.label == 0 && same_text(e, t, "bad film", 0));
        CHECK(same_text(ct_cls_dataset_get(ds, 2), t, "fine", 0));
        CHECK_EQ_INT(ct_cls_dataset_format(ds), CT_CLS_JSONL);
    }
    ct_cls_dataset_free(ds);
    /* integer labels sort numerically; a string "2" is the integer 2's label */
    ds = load(file("i.jsonl", "{\"text\":\"a\",\"label\":10}\n{\"text\":\"b\",\"label\":2}\n{\"text\":\"c\",\"label\":-1}\n"
                              "{\"text\":\"d\",\"label\":\"2\"}\n{\"text\":\"e\",\"label\":10.0}\n"), t, NULL);
    if (ds) {
        CHECK_EQ_INT(ct_cls_dataset_num_labels(ds), 3);
        CHECK(!strcmp(ct_cls_dataset_label(ds, 0), "-1") && !strcmp(ct_cls_dataset_label(ds, 1), "2") &&
              !strcmp(ct_cls_dataset_label(ds, 2), "10"));
        CHECK(ct_cls_dataset_get(ds, 0).label == 2 && ct_cls_dataset_get(ds, 3).label == 1 &&
              ct_cls_dataset_get(ds, 4).label == 2);
        CHECK_EQ_INT(ct_cls_dataset_class_count(ds, 1), 2);
    }
    ct_cls_dataset_free(ds);
    /* not all canonical integers ("007"): bytewise order */
    ds = load(file("m.jsonl", "{\"text\":\"a\",\"label\":10}\n{\"text\":\"b\",\"label\":\"007\"}\n{\"text\":\"c\",\"label\":9}\n"),
              t, NULL);
    if (ds) CHECK(!strcmp(ct_cls_dataset_label(ds, 0), "007") && !strcmp(ct_cls_dataset_label(ds, 1), "10") &&
                  !strcmp(ct_cls_dataset_label(ds, 2), "9"));
    ct_cls_dataset_free(ds);
    /* named keys; the extension-less file detected from '{' */
    ct_cls_opts o = {.text_key = "body", .label_key = "y"};
    ds = load(file("named", "{\"body\":\"x y\",\"y\":\"b\",\"text\":\"ignored\"}\n{\"body\":\"z\",\"y\":\"a\"}\n"), t, &o);
    if (ds) CHECK(ct_cls_dataset_size(ds) == 2 && same_text(ct_cls_dataset_get(ds, 0), t, "x y", 0) &&
                  ct_cls_dataset_get(ds, 0).label == 1);
    ct_cls_dataset_free(ds);
    /* a JSON array */
    ds = load(file("a.json", "[{\"text\":\"one\",\"label\":1},\n {\"text\":\"zero\",\"label\":0}]"), t, NULL);
    if (ds) CHECK(ct_cls_dataset_size(ds) == 2 && ct_cls_dataset_get(ds, 1).line == 2 && ct_cls_dataset_get(ds, 1).label == 0);
    ct_cls_dataset_free(ds);
    /* unlabeled, allowed */
    ct_cls_opts ou = {.allow_unlabeled = 1};
    ds = load(file("u.jsonl", "{\"text\":\"a\"}\n{\"text\":\"b\",\"label\":null}\n"), t, &ou);
    if (ds) CHECK(ct_cls_dataset_size(ds) == 2 && !ct_cls_dataset_has_labels(ds) && ct_cls_dataset_get(ds, 1).label == -1 &&
                  ct_cls_dataset_num_labels(ds) == 0);
    ct_cls_dataset_free(ds);
}

static void test_csv(const ct_tokenizer *t) {
    const char *body = "id,text,label\r\n"
                       "1,\"a \"\"quoted\"\" word, with a comma\",pos\r\n"
                       "2,\"two\nlines\",neg\r\n"
                       "3,plain,\"pos\"\r\n"
                       "4,\"\",neg\n";
    ct_cls_opts o = {.skip_bad_rows = 1};
    ct_cls_dataset *ds = load(file("q.csv", body), t, &o);
    if (ds) {
        CHECK_EQ_INT(ct_cls_dataset_size(ds), 3);
        CHECK_EQ_INT(ct_cls_dataset_format(ds), CT_CLS_CSV);
        CHECK(same_text(ct_cls_dataset_get(ds, 0), t, "a \"quoted\" word, with a comma", 0));
        CHECK(same_text(ct_cls_dataset_get(ds, 1), t, "two\nlines", 0));
        CHECK_EQ_INT(ct_cls_dataset_get(ds, 1).line, 3);
        CHECK_EQ_INT(ct_cls_dataset_get(ds, 2).line, 5); /* after the newline inside quotes */
        CHECK(ct_cls_dataset_get(ds, 2).label == 1 && same_text(ct_cls_dataset_get(ds, 2), t, "plain", 0));
        const char *msgs = NULL;
        CHECK_EQ_INT(ct_cls_dataset_bad_rows(ds, &msgs), 1);
        CHECK_HAS(msgs, "q.csv:6: empty text");
    }
    ct_cls_dataset_free(ds);
    /* header with label and one other column; text column found as "the other" */
    ds = load(file("two.csv", "label,review\nyes,nice\nno,\"meh, really\"\n"), t, NULL);
    if (ds) CHECK(ct_cls_dataset_size(ds) == 2 && same_text(ct_cls_dataset_get(ds, 1), t, "meh, really", 0));
    ct_cls_dataset_free(ds);
    /* headerless CSV: label,text */
    ds = load(file("nh.csv", "spam,\"win, now\"\nham,hi\n"), t, NULL);
    if (ds) CHECK(ct_cls_dataset_size(ds) == 2 && !ct_cls_dataset_has_header(ds) && ct_cls_dataset_get(ds, 0).label == 1 &&
                  same_text(ct_cls_dataset_get(ds, 0), t, "win, now", 0));
    ct_cls_dataset_free(ds);
    /* a TSV with quoting forced on */
    ct_cls_opts oq = {.quoting = CT_CLS_QUOTES};
    ds = load(file("q.tsv", "label\ttext\na\t\"x\ty\"\n"), t, &oq);
    if (ds) CHECK(ct_cls_dataset_size(ds) == 1 && same_text(ct_cls_dataset_get(ds, 0), t, "x\ty", 0));
    ct_cls_dataset_free(ds);
}

static void test_errors(const ct_tokenizer *t) {
    ct_cls_opts o0 = {0};
    char want[512];
    const char *p;
    /* unseen label in a validation file */
    const char *labels[2] = {"neg", "pos"};
    p = file("dev.tsv", "label\ttext\npos\tgood\nneutral\tso-so\nneg\tbad\n");
    snprintf(want, sizeof want, "%s:3: label 'neutral' is not in the label set (neg, pos)", p);
    load_fails(p, t, NULL, labels, 2, CT_ERR_FORMAT, want);
    ct_cls_opts osb = {.skip_bad_rows = 1}; /* an unseen label is not a malformed row */
    load_fails(p, t, &osb, labels, 2, CT_ERR_FORMAT, want);
    ct_cls_opts ou = {.skip_unseen_labels = 1};
    ct_cls_dataset *ds = NULL;
    CHECK_OK(ct_cls_dataset_load_labels(p, t, &ou, labels, 2, &ds));
    ct_cls_stats st;
    ct_cls_dataset_stats(ds, &st);
    CHECK(st.n_examples == 2 && st.n_unseen == 1 && st.n_empty_classes == 0);
    ct_cls_dataset_free(ds);
    /* a class with no example in the validation file: counted */
    const char *three[3] = {"neg", "neutral", "pos"};
    p = file("dev2.tsv", "label\ttext\npos\tgood\nneg\tbad\n");
    CHECK_OK(ct_cls_dataset_load_labels(p, t, NULL, three, 3, &ds));
    ct_cls_dataset_stats(ds, &st);
    CHECK(st.n_empty_classes == 1 && ct_cls_dataset_class_count(ds, 1) == 0 && ct_cls_dataset_class_count(ds, 2) == 1);
    ct_cls_dataset_free(ds);
    load_fails(p, t, NULL, (const char *[]){"a", "a"}, 2, CT_ERR_ARG, "label 'a' appears twice in the label set");

    /* empty text: an error, or skipped and counted */
    p = file("e.tsv", "label\ttext\na\tfine\nb\t  \nb\tok\n");
    snprintf(want, sizeof want, "%s:3: empty text", p);
    load_fails(p, t, &o0, NULL, 0, CT_ERR_FORMAT, want);
    ct_cls_opts os = {.skip_bad_rows = 1};
    CHECK_OK(ct_cls_dataset_load(p, t, &os, &ds));
    CHECK(ct_cls_dataset_size(ds) == 2 && ct_cls_dataset_bad_rows(ds, NULL) == 1);
    ct_cls_dataset_free(ds);
    /* a skipped row's label does not join the label set (found by fuzz_cls_data) */
    p = file("skiplab.tsv", "label\ttext\nb\t\na\tx\n");
    CHECK_OK(ct_cls_dataset_load(p, t, &os, &ds));
    CHECK(ct_cls_dataset_num_labels(ds) == 1 && !strcmp(ct_cls_dataset_label(ds, 0), "a"));
    ct_cls_dataset_free(ds);
    p = file("e.jsonl", "{\"text\":\"\",\"label\":1}\n");
    snprintf(want, sizeof want, "%s:1: empty text", p);
    load_fails(p, t, NULL, NULL, 0, CT_ERR_FORMAT, want);

    /* missing columns / keys */
    p = file("nolabel.tsv", "text\tscore\nhello\t3\n");
    load_fails(p, t, NULL, NULL, 0, CT_ERR_FORMAT, "nolabel.tsv:1: the header ('text', 'score') has no label column 'label'");
    p = file("notext.tsv", "label\tfoo\tbar\na\tb\tc\n");
    load_fails(p, t, NULL, NULL, 0, CT_ERR_FORMAT, "notext.tsv:1: the header ('label', 'foo', 'bar') has no text column");
    ct_cls_opts ok = {.text_key = "body"};
    p = file("notext2.tsv", "label\ttext\na\tb\n");
    load_fails(p, t, &ok, NULL, 0, CT_ERR_FORMAT, "notext2.tsv:1: the header ('label', 'text') has no text column 'body'");
    p = file("nl.jsonl", "{\"text\":\"a\",\"label\":\"x\"}\n{\"text\":\"b\"}\n");
    load_fails(p, t, NULL, NULL, 0, CT_ERR_FORMAT, "nl.jsonl:2: row has no 'label'");
    p = file("nt.jsonl", "{\"txt\":\"a\",\"label\":\"x\"}\n");
    load_fails(p, t, NULL, NULL, 0, CT_ERR_FORMAT, "nt.jsonl:1: row has no text: none of 'text', 'sentence', 'content'");
    p = file("badlab.jsonl", "{\"text\":\"a\",\"label\":1.5}\n");
    load_fails(p, t, NULL, NULL, 0, CT_ERR_FORMAT, "badlab.jsonl:1: 'label' 1.5 is not an integer");
    p = file("badlab2.jsonl", "{\"text\":\"a\",\"label\":[1]}\n");
    load_fails(p, t, NULL, NULL, 0, CT_ERR_FORMAT, "badlab2.jsonl:1: 'label' is neither a string nor an integer");
    p = file("emptylab.tsv", "label\ttext\n \tx\n");
    load_fails(p, t, NULL, NULL, 0, CT_ERR_FORMAT, "emptylab.tsv:2: empty label");

    /* wrong field count */
    p = file("fc.tsv", "label\ttext\na\tb\na\tb\tc\n");
    load_fails(p, t, NULL, NULL, 0, CT_ERR_FORMAT, "fc.tsv:3: 3 fields, the header (line 1) has 2");
    p = file("fc2", "ham\thello\nspam\n");
    load_fails(p, t, NULL, NULL, 0, CT_ERR_FORMAT, "fc2:2: 1 fields, a file without a header holds label<TAB>text (2)");
    p = file("fc3.tsv", "a\tb\tc\n1\t2\t3\n");
    load_fails(p, t, NULL, NULL, 0, CT_ERR_FORMAT, "fc3.tsv:1: no header (no 'label' column among 'a', 'b', 'c') and 3 fields");

    /* bad JSON, and not an object */
    p = file("bj.jsonl", "{\"text\":\"a\",\"label\":1}\n{\"text\":\"b\" \"label\":1}\n");
    load_fails(p, t, NULL, NULL, 0, CT_ERR_FORMAT, "bj.jsonl:2: bad JSON at column");
    p = file("arr.jsonl", "[1, 2]\n");
    load_fails(p, t, NULL, NULL, 0, CT_ERR_FORMAT, "arr.jsonl: element 1: row is not a JSON object");

    /* quoting errors (never skipped) */
    p = file("uq.csv", "label,text\na,\"open\nb,c\n");
    load_fails(p, t, &os, NULL, 0, CT_ERR_FORMAT, "uq.csv:2: unterminated quoted field (opened on line 2)");
    p = file("aq.csv", "label,text\na,\"x\"y\n");
    load_fails(p, t, &os, NULL, 0, CT_ERR_FORMAT, "aq.csv:2: text after the closing quote of field 2");

    /* empty files, undetectable files, a file with only skipped rows */
    load_fails(file("empty.tsv", ""), t, NULL, NULL, 0, CT_ERR_FORMAT, "empty.tsv: empty file");
    load_fails(file("blank.csv", "\n \n"), t, NULL, NULL, 0, CT_ERR_FORMAT, "blank.csv: empty file");
    load_fails(file("empty.jsonl", ""), t, NULL, NULL, 0, CT_ERR_FORMAT, "empty.jsonl: no examples");
    load_fails(file("header-only.tsv", "label\ttext\n"), t, NULL, NULL, 0, CT_ERR_FORMAT, "header-only.tsv: no examples");
    load_fails(file("what", "hello world\n"), t, NULL, NULL, 0, CT_ERR_FORMAT, "what: cannot tell the format");
    load_fails(file("allbad.jsonl", "{\"text\":\"\",\"label\":1}\n"), t, &os, NULL, 0, CT_ERR_FORMAT,
               "allbad.jsonl: no examples (1 rows skipped as bad");
    CHECK_EQ_INT(ct_cls_dataset_load("/nonexistent/x.tsv", t, NULL, &ds), CT_ERR_IO);
    ct_cls_opts neg = {.max_len = -1};
    load_fails(file("n.tsv", "label\ttext\na\tb\n"), t, &neg, NULL, 0, CT_ERR_ARG, "max_len -1 is negative");
}

static void test_truncation(const ct_tokenizer *t) {
    ct_cls_opts o = {.max_len = 4};
    ct_cls_dataset *ds = load(file("long.tsv", "label\ttext\nA\tone two three four five six seven\nB\tok\n"
                                              "A\tthe quick brown fox jumps over the lazy dog\n"), t, &o);
    if (!ds) return;
    ct_cls_stats st;
    ct_cls_dataset_stats(ds, &st);
    CHECK_EQ_INT(st.n_truncated, 2);
    CHECK_EQ_INT(st.max_tokens, 4);
    CHECK(same_text(ct_cls_dataset_get(ds, 0), t, "one two three four five six seven", 4));
    CHECK(same_text(ct_cls_dataset_get(ds, 1), t, "ok", 4));
    CHECK(!ct_cls_dataset_get(ds, 1).truncated && ct_cls_dataset_get(ds, 2).truncated);
    char sum[256];
    ct_cls_dataset_summary(ds, sum, sizeof sum);
    CHECK_HAS(sum, "3 examples (tsv, header), 2 labels (A 2, B 1), ");
    CHECK_HAS(sum, ", longest 4, 2 truncated");
    ct_cls_dataset_free(ds);
}

static void test_split_small(const ct_tokenizer *t) {
    /* 10 of a, 3 of b, 1 of c: 0.3 -> 3 a, 1 b, no c (never all of a class) */
    char body[1024] = "label\ttext\n";
    for (int i = 0; i < 14; i++)
        snprintf(body + strlen(body), sizeof body - strlen(body), "%s\tt%d\n", i < 10 ? "a" : i < 13 ? "b" : "c", i);
    ct_cls_dataset *ds = load(file("sp.tsv", body), t, NULL), *tr = NULL, *va = NULL;
    if (!ds) return;
    CHECK_OK(ct_cls_dataset_split(ds, 0.3, 1, &tr, &va));
    if (va) {
        CHECK(ct_cls_dataset_class_count(va, 0) == 3 && ct_cls_dataset_class_count(va, 1) == 1 &&
              ct_cls_dataset_class_count(va, 2) == 0 && ct_cls_dataset_class_count(tr, 2) == 1);
        ct_cls_stats st;
        ct_cls_dataset_stats(va, &st);
        CHECK_EQ_INT(st.n_empty_classes, 1);
    }
    ct_cls_dataset_free(tr);
    ct_cls_dataset_free(va);
    /* a tiny fraction still gives one validation example, from the largest class */
    CHECK_OK(ct_cls_dataset_split(ds, 0.01, 1, &tr, &va));
    if (va) CHECK(ct_cls_dataset_size(va) == 1 && ct_cls_dataset_get(va, 0).label == 0);
    ct_cls_dataset_free(tr);
    ct_cls_dataset_free(va);
    ct_cls_dataset_free(ds);
}

/* ---- metrics -------------------------------------------------------------------------------- */

static void test_metrics(void) {
    /* gold 0 0 0 1 1 2 2 2, predicted 0 0 1 1 1 2 0 2:
     * class 0: tp 2 of 3 predicted, 3 gold -> P 2/3 R 2/3 F1 2/3
     * class 1: tp 2 of 3 predicted, 2 gold -> P 2/3 R 1   F1 4/5
     * class 2: tp 2 of 2 predicted, 3 gold -> P 1   R 2/3 F1 4/5
     * accuracy 6/8, macro-F1 (2/3 + 4/5 + 4/5) / 3 = 34/45; a 4th label seen
     * in neither is left out of the averages. */
    const int gold[8] = {0, 0, 0, 1, 1, 2, 2, 2}, pred[8] = {0, 0, 1, 1, 1, 2, 0, 2};
    ct_cls_metrics m;
    CHECK_OK(ct_cls_metrics_compute(gold, pred, 8, 4, &m));
    CHECK_EQ_INT(m.correct, 6);
    CHECK_NEAR(m.accuracy, 0.75, 1e-15);
    CHECK_NEAR(m.macro_f1, 34.0 / 45.0, 1e-15);
    CHECK_NEAR(m.macro_precision, (2.0 / 3 + 2.0 / 3 + 1) / 3, 1e-15);
    CHECK_NEAR(m.macro_recall, (2.0 / 3 + 1 + 2.0 / 3) / 3, 1e-15);
    CHECK_EQ_INT(m.n_classes_averaged, 3);
    CHECK_NEAR(m.f1[1], 0.8, 1e-15);
    CHECK_NEAR(m.precision[0], 2.0 / 3, 1e-15);
    CHECK(m.f1[3] == 0 && m.support[3] == 0 && m.support[2] == 3 && m.predicted[1] == 3);
    static const size_t conf[16] = {2, 1, 0, 0, 0, 2, 0, 0, 1, 0, 2, 0, 0, 0, 0, 0};
    CHECK(!memcmp(m.confusion, conf, sizeof conf));
    ct_cls_metrics_deinit(&m);

    /* the printed report, exactly */
    const int g2[5] = {0, 0, 0, 1, 1}, p2[5] = {0, 0, 1, 1, 0};
    const char *names[2] = {"ham", "spam"};
    CHECK_OK(ct_cls_metrics_compute(g2, p2, 5, 2, &m));
    char buf[1024];
    size_t n = ct_cls_metrics_format(&m, names, buf, sizeof buf);
    const char *want =
        "accuracy 0.6000 (3 of 5), macro-F1 0.5833, macro precision 0.5833, macro recall 0.5833 (over 2 classes)\n"
        "label  precision  recall      f1  support  predicted\n"
        "ham       0.6667  0.6667  0.6667        3          3\n"
        "spam      0.5000  0.5000  0.5000        2          2\n"
        "confusion matrix (rows: gold, columns: predicted)\n"
        "        ham  spam\n"
        "ham       2     1\n"
        "spam      1     1\n";
    CHECK_EQ_INT(n, strlen(want));
    CHECK(!strcmp(buf, want));
    if (strcmp(buf, want)) fprintf(stderr, "got:\n%s", buf);
    char small[16];
    CHECK_EQ_INT(ct_cls_metrics_format(&m, names, small, sizeof small), strlen(want));
    CHECK(strlen(small) == 15 && !strncmp(small, want, 15));
    FILE *f = tmpfile();
    if (f) {
        CHECK_OK(ct_cls_metrics_print(&m, names, f));
        CHECK_EQ_INT(ftell(f), (long)strlen(want));
        fclose(f);
    }
    ct_cls_metrics_deinit(&m);
    /* no names: indices */
    CHECK_OK(ct_cls_metrics_compute(g2, p2, 5, 2, &m));
    ct_cls_metrics_format(&m, NULL, buf, sizeof buf);
    CHECK_HAS(buf, "\n0         0.6667");
    ct_cls_metrics_deinit(&m);

    const int bad[2] = {0, 2};
    CHECK_EQ_INT(ct_cls_metrics_compute(gold, bad, 2, 2, &m), CT_ERR_RANGE);
    CHECK_HAS(ct_errmsg(), "example 1: predicted label 2 is outside [0, 2)");
    CHECK(m.confusion == NULL);
    CHECK_OK(ct_cls_metrics_compute(NULL, NULL, 0, 2, &m));
    CHECK(m.accuracy == 0 && m.macro_f1 == 0 && m.n_classes_averaged == 0);
    ct_cls_metrics_deinit(&m);
}

int main(void) {
    const char *sh = getenv("CTUNE_SHARED");
    snprintf(shared, sizeof shared, "%s", sh ? sh : "../shared");
    snprintf(dir, sizeof dir, "%s", "/tmp/ctune-cls.XXXXXX");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    ct_set_log(quiet, NULL, CT_LOG_ERROR); /* the loaders warn about skipped rows on purpose here */
    char p[4200];
    ct_tokenizer *spm = NULL, *gpt2 = NULL;
    snprintf(p, sizeof p, "%s/models/stories260K/tok512.bin", shared);
    CHECK_OK(ct_tokenizer_load(p, &spm));
    snprintf(p, sizeof p, "%s/models/tokenizers/gpt2-encoder.json", shared);
    CHECK_OK(ct_tokenizer_load(p, &gpt2));
    if (!spm || !gpt2) return ct_check_done("test_cls_data");
    CHECK(ct_tokenizer_adds_bos(spm) && !ct_tokenizer_adds_bos(gpt2));
    test_sms(spm);
    test_sst2(spm);
    const ct_tokenizer *toks[2] = {spm, gpt2};
    for (int i = 0; i < 2; i++) {
        test_jsonl(toks[i]);
        test_csv(toks[i]);
        test_errors(toks[i]);
        test_truncation(toks[i]);
        test_split_small(toks[i]);
    }
    test_metrics();
    ct_tokenizer_free(spm);
    ct_tokenizer_free(gpt2);
    if (!getenv("CT_TEST_KEEP")) {
        snprintf(p, sizeof p, "rm -rf '%s'", dir);
        if (system(p) != 0) fprintf(stderr, "could not remove %s\n", dir);
    } else printf("files kept in %s\n", dir);
    return ct_check_done("test_cls_data");
}
