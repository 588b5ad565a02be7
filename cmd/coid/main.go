// Command coid is the chain-of-identity and chain-of-custody service for
// autologous cell therapies. It wires the packages together (serve.go):
// the HTTP API and web UI over a bbolt ledger, and cold-chain telemetry
// from an embedded or outside MQTT broker through the ingest pipeline and
// monitor. Its other commands manage users and broker accounts, verify the
// ledger and the whole file offline, print labels, write custody reports
// and EPCIS exports, and simulate shippers.
//
// "coid help" lists the commands and the environment variables; "coid
// COMMAND --help" gives a command's synopsis and flags (help.go).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, errSilent) {
			fmt.Fprintln(os.Stderr, "coid:", err)
		}
		os.Exit(exitCode(err))
	}
}

// exitCode maps an error from run to the process exit status: 2 for usage
// errors, 3 for a ledger that failed verification, 1 otherwise (coid
// audit: a record or checkpoint that failed).
func exitCode(err error) int {
	var u usageError
	switch {
	case errors.As(err, &u):
		return 2
	case errors.Is(err, errVerifyFailed):
		return 3
	}
	return 1
}

var (
	errSilent       = errors.New("already reported")
	errVerifyFailed = errors.New("ledger verification failed")
)

type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// run is the whole program behind main, testable end to end.
func run(ctx context.Context, args, env []string, stdin io.Reader, stdout, stderr io.Writer) error {
	err := dispatch(ctx, args, env, stdin, stdout, stderr)
	if h := (helpRequest{}); errors.As(err, &h) {
		return writeHelp(stdout, h.command)
	}
	return err
}

// dispatch runs the command args name. A request for help comes back as
// a helpRequest, which run answers.
func dispatch(ctx context.Context, args, env []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, topUsage())
		return usagef("no command given")
	}
	if len(args) > 1 && isHelp(args[1]) && (args[0] == "version" || isGroup(args[0])) {
		return helpRequest{command: args[0]}
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], env, stdout, stderr)
	case "verify":
		return runVerify(ctx, args[1:], env, stdout, stderr)
	case "user":
		if len(args) == 1 {
			fmt.Fprint(stderr, groupUsage("user"))
			return usagef("user: give a subcommand: %s", strings.Join(subcommands("user"), ", "))
		}
		return runUser(ctx, args[1:], env, stdin, stdout, stderr)
	case "registry":
		if len(args) == 1 {
			fmt.Fprint(stderr, groupUsage("registry"))
			return usagef("registry: give a subcommand: %s", strings.Join(subcommands("registry"), ", "))
		}
		return runRegistry(ctx, args[1:], env, stdout, stderr)
	case "report":
		return runReport(ctx, args[1:], env, stdout, stderr)
	case "audit":
		if isTrailAudit(args[1:]) {
			return runAuditTrail(ctx, args[1:], env, stdout, stderr)
		}
		return runAudit(ctx, args[1:], env, stdout, stderr)
	case "audit-trail":
		return runAuditTrail(ctx, args[1:], env, stdout, stderr)
	case "label":
		return runLabel(ctx, args[1:], env, stdout, stderr)
	case "simulate":
		return runSimulate(ctx, args[1:], env, stdout, stderr)
	case "site-map":
		return runSiteMap(ctx, args[1:], env, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, args[1:], env, stdout, stderr)
	case "witnessed":
		return runWitnessed(ctx, args[1:], env, stdout, stderr)
	case "key":
		if len(args) == 1 {
			fmt.Fprint(stderr, groupUsage("key"))
			return usagef("key: give a subcommand: %s", strings.Join(subcommands("key"), ", "))
		}
		return runKey(ctx, args[1:], env, stdout, stderr)
	case "mqtt-user":
		if len(args) == 1 {
			fmt.Fprint(stderr, groupUsage("mqtt-user"))
			return usagef("mqtt-user: give a subcommand: %s", strings.Join(subcommands("mqtt-user"), ", "))
		}
		return runMQTTUser(ctx, args[1:], env, stdin, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "coid", version)
		return nil
	case "help", "-h", "-help", "--help":
		if len(args) > 1 && isHelp(args[1]) {
			return helpRequest{command: "help"}
		}
		return helpRequest{command: strings.Join(args[1:], " ")}
	}
	fmt.Fprint(stderr, topUsage())
	return usagef("unknown command %q", args[0])
}
