// Package mdtest reads the project's Markdown docs for the tests that hold
// them to the code: a table's rows, and every line of a set of files. It is
// imported by tests only.
package mdtest

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// Table returns the rows of the Markdown table of the file at path whose
// header line is header, each cell trimmed; an escaped `\|` stays in its
// cell. The test fails when the file or the table is missing.
func Table(tb testing.TB, path, header string) [][]string {
	tb.Helper()
	lines := lines(tb, path)
	start := slices.Index(lines, header)
	if start < 0 {
		tb.Fatalf("%s has no table headed %q", path, header)
	}
	var rows [][]string
	for _, line := range lines[start+2:] { // past the header and its |---| line
		if !strings.HasPrefix(line, "|") {
			break
		}
		line = strings.ReplaceAll(strings.Trim(line, "|"), `\|`, "\x00")
		var row []string
		for _, cell := range strings.Split(line, "|") {
			row = append(row, strings.TrimSpace(strings.ReplaceAll(cell, "\x00", `\|`)))
		}
		rows = append(rows, row)
	}
	return rows
}

// EachLine calls fn with every line of each file of paths, numbered from 1.
func EachLine(tb testing.TB, paths []string, fn func(path string, n int, line string)) {
	tb.Helper()
	for _, path := range paths {
		for i, line := range lines(tb, path) {
			fn(path, i+1, line)
		}
	}
}

func lines(tb testing.TB, path string) []string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return strings.Split(string(b), "\n")
}
