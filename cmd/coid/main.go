// Command coid is the chain-of-identity and chain-of-custody service for
// autologous cell therapies: it serves the HTTP API over a bbolt ledger,
// manages users, and verifies the ledger offline.
//
// Usage:
//
//	coid serve   [--data DIR] [--http ADDR] [--fin FIN]
//	coid verify  --data DIR
//	coid user add --data DIR --id ID --name NAME --role ROLE   (password on stdin)
//	coid user unlock --data DIR --id ID
//	coid user list --data DIR
//	coid label --data DIR --user ID [--format pdf|png|zpl] [--symbology qr|datamatrix] [-o FILE] BAG_ID_OR_COI
//	coid simulate [--mqtt-url URL] [--shippers N] [--rate R] [--scenario S] [--duration D | --count N]
//	coid version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
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
// errors, 3 for a ledger that failed verification, 1 otherwise.
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

const usage = `coid: chain of identity and custody for autologous cell therapies

Usage:
  coid serve   [--data DIR] [--http ADDR] [--fin FIN]   run the service
  coid verify  [--data DIR]                             verify the ledger offline
  coid user add    [--data DIR] --id ID --name NAME --role ROLE
                                                        add a user; password on stdin; prints the API token
  coid user unlock [--data DIR] --id ID                 clear a failed-signature lock
  coid user list   [--data DIR]                         list users
  coid user token  [--data DIR] --id ID                 issue another API token
  coid label   [--data DIR] --user ID [--format pdf|png|zpl] [--symbology qr|datamatrix] [-o FILE] BAG_ID_OR_COI
                                                        print bag labels offline (a COI: every bag)
  coid report  [--data DIR] [--user ID] [--format pdf|epcis] [--tz ZONE] [--at TIME] [-o FILE] COI
                                                        write a chain's custody report (PDF) or EPCIS export offline
  coid mqtt-user add  --file FILE --user NAME [--shippers ID,ID|*]
                                                        add a client of the embedded MQTT broker; password on stdin
  coid mqtt-user list --file FILE                       list those clients
  coid simulate [--mqtt-url URL] [--prefix P] [--shippers N] [--rate R] [--scenario S] [--format json|senml|mix]
               [--duration D | --count N]               publish simulated shipper telemetry over MQTT
  coid version                                          print the version

Environment: COID_DATA, COID_HTTP, COID_FIN set the defaults of --data, --http and --fin.
COID_MQTT_MAX_CONNS sets that of serve's --mqtt-max-conns (2000), the embedded broker's cap on open connections.
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// run is the whole program behind main, testable end to end.
func run(ctx context.Context, args, env []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usagef("no command given")
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], env, stdout, stderr)
	case "verify":
		return runVerify(ctx, args[1:], env, stdout, stderr)
	case "user":
		return runUser(ctx, args[1:], env, stdin, stdout, stderr)
	case "report":
		return runReport(ctx, args[1:], env, stdout, stderr)
	case "label":
		return runLabel(ctx, args[1:], env, stdout, stderr)
	case "simulate":
		return runSimulate(ctx, args[1:], env, stdout, stderr)
	case "mqtt-user":
		return runMQTTUser(ctx, args[1:], env, stdin, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "coid", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usagef("unknown command %q", args[0])
}
