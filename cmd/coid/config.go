package main

import (
	"flag"
	"io"
	"log/slog"
	"strconv"
	"strings"
)

// settings are the options shared by the commands; flags override the
// COID_* environment variables, which override the defaults.
type settings struct {
	data  string
	store string
	// checkpointKey is the file of the log's checkpoint signing key,
	// handed to every instance on one PostgreSQL store; empty: the key
	// in --data.
	checkpointKey string
	http          string
	fin           string
	logLevel      string
	// logFormat is text (logfmt-like key=value) or json (one object a
	// line, for log collectors).
	logFormat string
}

func getenv(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

// envInt returns the integer in env's key, def if it is unset, and -1
// (which the flag's check refuses) if it is not an integer.
func envInt(env []string, key string, def int) int {
	v := getenv(env, key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return -1
	}
	return n
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// newFlags returns a flag set for command name with the shared flags bound
// to s, their defaults taken from env.
func newFlags(name string, env []string, stderr io.Writer, s *settings) *flag.FlagSet {
	fs := flag.NewFlagSet("coid "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&s.data, "data", or(getenv(env, "COID_DATA"), "./data"), "data directory (COID_DATA)")
	fs.StringVar(&s.store, "store", getenv(env, "COID_STORE"), "store URL, postgres://... for PostgreSQL; empty: the bbolt file in --data (COID_STORE)")
	fs.StringVar(&s.checkpointKey, "checkpoint-key", getenv(env, "COID_CHECKPOINT_KEY_FILE"),
		"file of the log's checkpoint signing key, the same on every instance of one PostgreSQL store (coid key create); empty: checkpoint.key in --data (COID_CHECKPOINT_KEY_FILE)")
	fs.StringVar(&s.logLevel, "log-level", or(getenv(env, "COID_LOG_LEVEL"), "info"), "log level: debug, info, warn, error (COID_LOG_LEVEL)")
	fs.StringVar(&s.logFormat, "log-format", or(getenv(env, "COID_LOG_FORMAT"), "text"), "log format: text or json (COID_LOG_FORMAT)")
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	quiet(fs)
	if err := fs.Parse(args); err != nil {
		return flagError(fs, err)
	}
	if fs.NArg() > 0 {
		return usagef("%s: unexpected argument %q", commandName(fs), fs.Arg(0))
	}
	return checkStoreFlag(fs)
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("log level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usagef("log format %q: use text or json", format)
}
