package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/coid-project/coid/custody/passwd"
	"github.com/coid-project/coid/sensors"
)

// runMQTTUser manages the embedded broker's credentials file: "add" hashes
// a password read from stdin and appends the account; "list" prints the
// accounts without their hashes.
func runMQTTUser(ctx context.Context, args, env []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "add" && args[0] != "list") {
		return usagef("mqtt-user: want add or list")
	}
	fset := flag.NewFlagSet("coid mqtt-user "+args[0], flag.ContinueOnError)
	fset.SetOutput(stderr)
	file := fset.String("file", getenv(env, "COID_MQTT_AUTH"), "credentials file, as given to coid serve --mqtt-auth (COID_MQTT_AUTH)")
	var user, shippers string
	if args[0] == "add" {
		fset.StringVar(&user, "user", "", "MQTT user name: the shipper's ID, or a gateway's name")
		fset.StringVar(&shippers, "shippers", "", "comma-separated shipper IDs it may publish for, or * for all (default: the user name)")
	}
	if err := parse(fset, args[1:]); err != nil {
		return err
	}
	if *file == "" {
		return usagef("mqtt-user %s: --file is required", args[0])
	}
	old, err := os.ReadFile(*file)
	if err != nil && !(args[0] == "add" && errors.Is(err, fs.ErrNotExist)) {
		return fmt.Errorf("mqtt-user %s: %w", args[0], err)
	}
	accounts, err := sensors.ParseBrokerAccounts(old)
	if err != nil {
		return fmt.Errorf("mqtt-user %s: %s: %w", args[0], *file, err)
	}
	if args[0] == "list" {
		for _, a := range accounts {
			fmt.Fprintf(stdout, "%s\t%s\n", a.User, strings.Join(a.Shippers, ","))
		}
		return nil
	}
	if user == "" {
		return usagef("mqtt-user add: --user is required")
	}
	for _, a := range accounts {
		if a.User == user {
			return usagef("mqtt-user add: user %s is already in %s", user, *file)
		}
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		return fmt.Errorf("mqtt-user add: read password from stdin: %w", err)
	}
	password := strings.TrimRight(line, "\r\n")
	if len(password) < 12 {
		return usagef("mqtt-user add: give a password of at least 12 characters on stdin, e.g. printf '%%s\\n' \"$PASSWORD\" | coid mqtt-user add ...")
	}
	hash, err := passwd.Default().Hash(password)
	if err != nil {
		return fmt.Errorf("mqtt-user add: %w", err)
	}
	var list []string
	if shippers != "" {
		list = strings.Split(shippers, ",")
	}
	acct, err := sensors.NewBrokerAccount(user, hash, list)
	if err != nil {
		return usagef("mqtt-user add: %v", err)
	}
	// Appended in one write to a file only its owner reads; the service
	// reads it when it starts.
	f, err := os.OpenFile(*file, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("mqtt-user add: %w", err)
	}
	prefix := ""
	if len(old) > 0 && old[len(old)-1] != '\n' {
		prefix = "\n"
	}
	if _, err := f.WriteString(prefix + acct.Line() + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("mqtt-user add: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("mqtt-user add: %w", err)
	}
	fmt.Fprintf(stdout, "added %s (may publish for %s) to %s; apply it with kill -HUP on coid serve (or a restart)\n", acct.User, strings.Join(acct.Shippers, ","), *file)
	return nil
}
