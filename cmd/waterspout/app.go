package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command ran and failed
	exitUsage = 2 // the invocation was wrong
)

// env is what a command may touch of the outside world, so tests can give
// it buffers and a fake environment.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

// command is one subcommand. Adding one is adding an entry to commands.
type command struct {
	name    string
	summary string
	// run does the work. It prints its own help to e.stdout and returns
	// flag.ErrHelp for -h; a usageError for a wrong invocation.
	run func(ctx context.Context, e *env, args []string) error
}

// commands lists the subcommands in the order `help` shows them. It is a
// function so that the help command may refer to the list.
func commands() []command {
	return []command{
		{"serve", "run the push server (the default command)", runServe},
		{"publish", "publish a message through a server's API", runPublish},
		{"listen", "print a channel's messages as JSON lines, resuming through cuts", runListen},
		{"bench", "load-test a running server (and a peer): memory, fan-out, latency", runBench},
		{"token", "print a signed connection or publisher token (for testing)", runToken},
		{"health", "check a server's /livez (a container's HEALTHCHECK)", runHealth},
		{"version", "print the version", runVersion},
		{"help", "show this help, or a command's: waterspout help COMMAND", runHelp},
	}
}

// defaultCommand runs when the arguments name no command.
const defaultCommand = "serve"

// usageError is a mistake in the invocation: exit code 2.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// run dispatches args to a command and returns the exit code.
func run(ctx context.Context, args []string, e *env) int {
	name := defaultCommand
	switch {
	case len(args) > 0 && isHelpFlag(args[0]):
		name, args = "help", args[1:]
	case len(args) > 0 && !strings.HasPrefix(args[0], "-"):
		name, args = args[0], args[1:]
	}
	cmd, ok := lookup(name)
	if !ok {
		fmt.Fprintf(e.stderr, "waterspout: unknown command %q\n\n", name)
		writeUsage(e.stderr)
		return exitUsage
	}
	err := cmd.run(ctx, e, args)
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(e.stderr, "waterspout %s: %v\nRun 'waterspout %s --help' for usage.\n", name, err, name)
		return exitUsage
	default:
		fmt.Fprintf(e.stderr, "waterspout %s: %v\n", name, err)
		return exitError
	}
}

func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func isHelpFlag(s string) bool { return s == "-h" || s == "-help" || s == "--help" }

func writeUsage(w io.Writer) {
	fmt.Fprint(w, "WaterSpout is a real-time push server: backends publish over HTTP, browsers\n"+
		"subscribed to the channel receive it at once.\n\n"+
		"Usage: waterspout [command] [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "\nRun 'waterspout COMMAND --help' for a command's flags.\n")
}

func runHelp(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		writeUsage(e.stdout)
		return nil
	}
	cmd, ok := lookup(args[0])
	if !ok || cmd.name == "help" {
		return usagef("no help for %q", args[0])
	}
	return cmd.run(ctx, e, []string{"--help"})
}

// newFlagSet returns a command's flag set, which prints nothing: parseArgs
// prints its usage, and a usage error says what was wrong.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// serverFlag defines --server, the server's base URL (env
// WATERSPOUT_SERVER, else defaultServer).
func (e *env) serverFlag(fs *flag.FlagSet) *string {
	return fs.String("server", firstNonEmpty(e.getenv("WATERSPOUT_SERVER"), defaultServer), "")
}

// apiKeyFlag defines --api-key (env WATERSPOUT_API_KEY, else the first of
// WATERSPOUT_API_KEYS).
func (e *env) apiKeyFlag(fs *flag.FlagSet) *string {
	return fs.String("api-key", defaultAPIKey(e.getenv), "")
}

// parseArgs is parseInterspersed for a command: --help prints usage and
// returns flag.ErrHelp, and any other parse error is a usage error.
func (e *env) parseArgs(fs *flag.FlagSet, args []string, usage string) ([]string, error) {
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(e.stdout, usage)
		return nil, err
	}
	if err != nil {
		return nil, usageError{err}
	}
	return pos, nil
}

// parseInterspersed parses flags that may come before, between or after
// positional arguments (the flag package stops at the first positional),
// and returns the positionals. "--" ends flag parsing.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// fs.Parse consumed a "--" if it stopped there: everything left is positional.
		if len(args) >= len(rest)+1 && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
