package server

import (
	"bytes"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/waterspout/waterspout/internal/mdtest"
	"github.com/waterspout/waterspout/session"
)

const operationsDoc = "../docs/OPERATIONS.md"

var codeSpan = regexp.MustCompile("`([^`]+)`")

// codeSpans returns the text of the `code` spans of a cell.
func codeSpans(cell string) []string {
	var out []string
	for _, m := range codeSpan.FindAllStringSubmatch(cell, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestOperationsConfigTable holds the configuration table of
// docs/OPERATIONS.md to the options serve reads: each option's row names its
// flag, environment variable, file key and default, no row names a setting
// that does not exist, and every key the config file takes is documented.
func TestOperationsConfigTable(t *testing.T) {
	rows := mdtest.Table(t, operationsDoc, "| flag | env | file key | default | meaning |")
	byEnv := map[string][]string{}
	fileOnly := map[string]bool{}
	for _, r := range rows {
		if len(r) != 5 {
			t.Errorf("row with %d cells: %q", len(r), r)
			continue
		}
		envs := codeSpans(r[1])
		if len(envs) == 0 {
			for _, k := range codeSpans(r[2]) {
				fileOnly[k] = true
			}
			continue
		}
		byEnv[envs[0]] = r
	}
	d := Defaults()
	for _, o := range options {
		r, ok := byEnv[o.env]
		if !ok {
			t.Errorf("%s (--%s) has no row", o.env, o.flag)
			continue
		}
		delete(byEnv, o.env)
		flags := codeSpans(r[0])
		switch {
		case o.flag == "" && len(flags) != 0:
			t.Errorf("%s: the row names flag %q; it has none", o.env, flags)
		case o.flag != "" && (len(flags) == 0 || strings.Fields(flags[0])[0] != "--"+o.flag):
			t.Errorf("%s: the row names flag %q, want --%s", o.env, flags, o.flag)
		}
		if o.alias != "" && !slices.Contains(codeSpans(r[1]), o.alias) {
			t.Errorf("%s: the row does not name %s, read as well", o.env, o.alias)
		}
		keys := codeSpans(r[2])
		switch {
		case o.key == "" && len(keys) != 0:
			t.Errorf("%s: the row names file key %q; the file cannot hold it", o.env, keys)
		case o.key != "" && !slices.Equal(keys, []string{o.key}):
			t.Errorf("%s: the row names file key %q, want %q", o.env, keys, o.key)
		}
		// The help writes "none: not checked" where the table may say
		// either half; one of them must be there.
		def := strings.ReplaceAll(r[3], "`", "")
		head, tail, _ := strings.Cut(o.def(d), ": ")
		if !strings.Contains(def, head) && (tail == "" || !strings.Contains(def, tail)) {
			t.Errorf("%s: the row's default is %q, serve's is %q", o.env, r[3], o.def(d))
		}
	}
	for env := range byEnv {
		t.Errorf("row for %s, which serve does not read", env)
	}

	// Every key the file takes, nested ones by their dotted path (fields of
	// list items by their own name, as the tables under it write them).
	doc, err := os.ReadFile(operationsDoc)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range fileKeys(reflect.TypeFor[Config](), "") {
		if !strings.Contains(string(doc), "`"+k+"`") && !fileOnly[k] {
			t.Errorf("config file key %q is not documented in %s", k, operationsDoc)
		}
	}
	for k := range fileOnly {
		if !slices.Contains(fileKeys(reflect.TypeFor[Config](), ""), k) {
			t.Errorf("row for file key %q, which the config file does not take", k)
		}
	}
}

// fileKeys lists the keys of the config file form of t: the leaves by their
// dotted path, lists of objects by theirs and their items' fields by their
// own name.
func fileKeys(t reflect.Type, prefix string) []string {
	if t == reflect.TypeFor[TokensConfig]() {
		t = reflect.TypeFor[tokensJSON]()
	}
	var out []string
	for name, ft := range jsonFields(t) {
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft.Kind() == reflect.Struct && ft.NumField() > 0:
			out = append(out, fileKeys(ft, prefix+name+".")...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			out = append(out, prefix+name)
			out = append(out, fileKeys(ft.Elem(), "")...)
		default:
			out = append(out, prefix+name)
		}
	}
	return out
}

// TestOperationsMetricsTable holds the metrics tables of docs/OPERATIONS.md
// to what /metrics serves: the same waterspout_* metrics, and the same
// values of waterspout_limited_total's limit label, each exported from the
// start as the doc says, the session package's limits included.
func TestOperationsMetricsTable(t *testing.T) {
	a := metricsAfterTraffic(t)
	served := map[string]bool{}
	limits := map[string]bool{}
	limitSeries := regexp.MustCompile(`^waterspout_limited_total\{limit="([a-z_]+)"\} `)
	for _, line := range strings.Split(string(a.body), "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[1] == "TYPE" && strings.HasPrefix(f[2], "waterspout_") {
			served[f[2]] = true
		}
		if m := limitSeries.FindStringSubmatch(line); m != nil {
			limits[m[1]] = true
		}
	}
	documented := map[string]bool{}
	for _, r := range mdtest.Table(t, operationsDoc, "| metric | type | labels | meaning |") {
		for _, m := range codeSpans(r[0]) {
			if strings.HasPrefix(m, "waterspout_") {
				documented[m] = true
			}
		}
	}
	if !reflect.DeepEqual(served, documented) {
		t.Errorf("/metrics serves %v; %s lists %v", slices.Sorted(maps.Keys(served)), operationsDoc, slices.Sorted(maps.Keys(documented)))
	}
	documented = map[string]bool{}
	for _, r := range mdtest.Table(t, operationsDoc, "| value | counted when |") {
		for _, v := range codeSpans(r[0]) {
			documented[v] = true
		}
	}
	if !reflect.DeepEqual(limits, documented) {
		t.Errorf("/metrics exports limit values %v; %s lists %v", slices.Sorted(maps.Keys(limits)), operationsDoc, slices.Sorted(maps.Keys(documented)))
	}
	for _, l := range []string{session.LimitCommands, session.LimitChannels, session.LimitChannelName,
		session.LimitServerChannels, session.LimitPresence} {
		if !limits[l] {
			t.Errorf("the session package counts limit %q; /metrics does not export it from the start", l)
		}
	}
}

// docFiles are the documents reviewers read; their links are checked.
var docFiles = []string{"../README.md", "../docs/PROTOCOL.md", operationsDoc, "../docs/SECURITY.md",
	"../docs/BENCHMARKS.md", "../client-js/README.md", "../CHANGELOG.md"}

var (
	mdLink     = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	mdHeading  = regexp.MustCompile(`^#+\s+(.*)`)
	notInSlug  = regexp.MustCompile(`[^\p{L}\p{N}_\- ]`)
	fenceStart = "```"
)

// proseLines returns the lines of a Markdown file outside code blocks.
func proseLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	code := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), fenceStart) {
			code = !code
			line = ""
		}
		if code {
			line = ""
		}
		out = append(out, line) // blanked, to keep line numbers
	}
	return out
}

// anchors returns the heading anchors GitHub makes for a Markdown file:
// lower case, punctuation dropped, spaces as dashes, repeats numbered.
func anchors(t *testing.T, path string) map[string]bool {
	seen := map[string]int{}
	out := map[string]bool{}
	for _, line := range proseLines(t, path) {
		m := mdHeading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		a := strings.ReplaceAll(notInSlug.ReplaceAllString(strings.ToLower(strings.TrimSpace(m[1])), ""), " ", "-")
		if n := seen[a]; n > 0 {
			out[fmt.Sprintf("%s-%d", a, n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	return out
}

// TestDocLinks checks that every relative link of the docs names a file
// that exists and, with #anchor, a heading of it: a renamed heading or a
// moved file breaks the link reviewers follow.
func TestDocLinks(t *testing.T) {
	for _, doc := range docFiles {
		for i, line := range proseLines(t, doc) {
			for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
				link := m[1]
				if strings.Contains(link, "://") || strings.HasPrefix(link, "mailto:") {
					continue
				}
				file, anchor, _ := strings.Cut(link, "#")
				target := doc
				if file != "" {
					target = filepath.Join(filepath.Dir(doc), file)
				}
				if _, err := os.Stat(target); err != nil {
					t.Errorf("%s:%d: %s: no such file", doc, i+1, link)
					continue
				}
				if anchor != "" && strings.HasSuffix(target, ".md") && !anchors(t, target)[anchor] {
					t.Errorf("%s:%d: %s: %s has no heading with that anchor", doc, i+1, link, target)
				}
			}
		}
	}
}

// retiredTests are tests the docs name as gone (what replaced them is named
// beside).
var retiredTests = map[string]bool{"TestHeldPollMemory": true}

var goTestName = regexp.MustCompile(`\b(?:Test|Fuzz|Benchmark)[A-Z][A-Za-z0-9_]*`)

// TestDocsNameRealTests checks that every test, fuzz target and benchmark
// the docs cite as evidence (or tell the reader to run) exists in some
// package: a renamed test must not leave a claim without its proof.
func TestDocsNameRealTests(t *testing.T) {
	defined := map[string]bool{}
	funcs := regexp.MustCompile(`(?m)^func ((?:Test|Fuzz|Benchmark)[A-Za-z0-9_]*)\(`)
	readGoFiles(t, true, func(b []byte) {
		for _, m := range funcs.FindAllSubmatch(b, -1) {
			defined[string(m[1])] = true
		}
	})
	mdtest.EachLine(t, docFiles[:5], func(doc string, n int, line string) { // README.md and docs/
		for _, name := range goTestName.FindAllString(line, -1) {
			if !defined[name] && !retiredTests[name] {
				t.Errorf("%s:%d: %s is not a test, fuzz target or benchmark of this repository", doc, n, name)
			}
		}
	})
}

// TestDocsNameRealEnvironment checks that every WATERSPOUT_* variable the
// docs name is read by some command: serve's are in the option table, the
// other commands' (WATERSPOUT_SERVER, WATERSPOUT_TOKEN…) in cmd/.
func TestDocsNameRealEnvironment(t *testing.T) {
	envName := regexp.MustCompile(`\bWATERSPOUT_[A-Z0-9_]*[A-Z0-9]`)
	read := map[string]bool{}
	readGoFiles(t, false, func(b []byte) {
		for _, m := range envName.FindAll(b, -1) {
			if bytes.Contains(b, []byte(`"`+string(m)+`"`)) { // a string literal: something reads it
				read[string(m)] = true
			}
		}
	})
	mdtest.EachLine(t, docFiles[:5], func(doc string, n int, line string) { // README.md and docs/
		for _, name := range envName.FindAllString(line, -1) {
			if !read[name] {
				t.Errorf("%s:%d: %s is read by no command", doc, n, name)
			}
		}
	})
}

// readGoFiles calls fn with each Go file of the repository: its tests when
// tests is true, else the rest.
func readGoFiles(t *testing.T, tests bool, fn func(b []byte)) {
	t.Helper()
	err := filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != ".." && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") != tests {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fn(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDocsNameRealRoutes holds the routes the docs name ("GET /api/history")
// to the routes the server registers, both ways: a documented route exists
// with that method, and every API, health, metrics and admin route is
// documented. The server has every optional route on (the admin view).
func TestDocsNameRealRoutes(t *testing.T) {
	ts := newAdminServer(t, nil)
	registered := map[string]bool{}
	for _, r := range ts.echo.Routes() {
		registered[r.Method+" "+r.Path] = true
	}
	route := regexp.MustCompile(`\b(?:GET|POST|PUT|DELETE|HEAD|OPTIONS) /[A-Za-z0-9_./:*-]*`)
	documented := map[string]bool{}
	mdtest.EachLine(t, docFiles[:5], func(doc string, n int, line string) { // README.md and docs/
		for _, r := range route.FindAllString(line, -1) {
			r = strings.TrimRight(r, ".:")
			_, path, _ := strings.Cut(r, " ")
			served := strings.HasPrefix(path, "/api/") || strings.HasPrefix(path, "/connect/") ||
				slices.Contains([]string{"/livez", "/readyz", "/metrics"}, path) ||
				path == "/admin" || strings.HasPrefix(path, "/admin/")
			if !served || strings.HasPrefix(path, "/connect/sockjs/") { // SockJS's own paths are its library's
				continue
			}
			documented[r] = true
			if !registered[r] {
				t.Errorf("%s:%d: %s is not a route of the server", doc, n, r)
			}
		}
	})
	for r := range registered {
		method, path, _ := strings.Cut(r, " ")
		if (method == http.MethodGet || method == http.MethodPost) && !strings.HasPrefix(path, "/connect/") &&
			path != "/" && path != "/client/:file" && !documented[r] &&
			path != "/admin/admin.js" && path != "/admin/admin.css" { // the admin page's own files
			t.Errorf("route %s is not in README.md or docs/", r)
		}
	}
}
