package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// commandHelp is what help says about one command or subcommand beyond
// its flags, which come from the command's own flag set.
type commandHelp struct {
	name  string // "serve", "user add"
	args  string // required flags and the arguments, e.g. "--id ID"
	about string // one line, for the command list
	text  string // the full description; empty for "about" alone
}

// commands lists every command and subcommand in the order help shows
// them. TestHelp checks it against the commands run and runUser know.
func commands() []commandHelp {
	return []commandHelp{
		{name: "serve", about: "run the service: HTTP API, web UI and MQTT telemetry intake", text: serveHelp},
		{name: "verify", about: "verify the ledger and the whole file offline; exit 3 names the first bad record or part", text: verifyHelp},
		{name: "user add", args: "--id ID --name NAME --role ROLE [--org CODE --site CODE ...]", about: "add a user, password on stdin, bound to an organisation and its sites; prints its API token once"},
		{name: "user network", args: "--id ID --org CODE [--site CODE ...] --reason TEXT", about: "bind a user to an organisation and the sites where they work (no --org: unbind); audited"},
		{name: "user unlock", args: "--id ID [--url URL]", about: "clear a user's lock after failed password attempts (--url: through the running service, token in COID_TOKEN)"},
		{name: "user list", about: "list users"},
		{name: "user token", args: "--id ID", about: "issue another API token"},
		{name: "user passwd", args: "--url URL", about: "change your own password (current, then new, on stdin); your other API tokens are revoked"},
		{name: "user reset", args: "--url URL --id ID --reason TEXT", about: "set a temporary password (stdin) the user must change at the next sign-in"},
		{name: "user disable", args: "--url URL --id ID --reason TEXT", about: "disable a user: no sign-in, no API, no signature; history kept"},
		{name: "user enable", args: "--url URL --id ID --reason TEXT", about: "enable a disabled user again"},
		{name: "user tokens", args: "--url URL [--id ID]", about: "list API tokens (IDs, created, last used; never the tokens)"},
		{name: "user revoke", args: "--url URL --token TOKEN_ID [--id ID]", about: "revoke an API token at once (another user's: administrators, with --reason)"},
		{name: "label", args: "--user ID BAG_ID_OR_COI", about: "print bag labels offline (a COI: every bag)", text: labelUsage},
		{name: "report", args: "COI", about: "write a chain's custody report (PDF) or EPCIS export offline", text: reportUsage},
		{name: "site-map", args: "--user ID --name NAME --site CODE --reason TEXT | --list", about: "map an old chain's free-text site name to a registered site, offline (audited); --list shows the mappings", text: siteMapHelp},
		{name: "audit", args: "--key KEY REPORT.pdf|BUNDLE.json | --key KEY --since OLD [--proof FILE|--url URL] [NEW]", about: "check a report's proof offline with the verifier key alone (exit 1 names the first failing record or checkpoint), or that the ledger only grew", text: auditUsage},
		{name: "audit-trail", args: "--pdf FILE | --csv FILE", about: "write the administrative audit-trail report (PDF, CSV) offline, filtered by period, actor and object (also: coid audit --pdf|--csv)", text: auditTrailUsage},
		{name: "registry import", args: "--actor ID --file FILE --reason TEXT", about: "register a network (organisations, sites, products, shippers, expanded-access jurisdictions) from JSON offline; reports what failed, skips what exists"},
		{name: "registry list", args: "--actor ID [--kind KIND]", about: "list the registered organisations, sites, products, shippers and jurisdictions"},
		{name: "migrate", args: "--from DIR --to postgres://...", about: "copy a stopped bbolt store into an empty PostgreSQL database, byte for byte, and verify the copy", text: migrateHelp},
		{name: "key show", about: "print the checkpoint verifier key (public; signed-note format)", text: keyHelp},
		{name: "key rotate", about: "replace the checkpoint signing key; the old one's verifier key is kept (retired)", text: keyHelp},
		{name: "key export", about: "print every checkpoint verifier key, active and retired", text: keyHelp},
		{name: "key create", args: "--out FILE [--origin NAME]", about: "write a new checkpoint signing key to a file, for --checkpoint-key on every instance of one PostgreSQL store", text: keyHelp},
		{name: "witnessed", args: "[--quorum N] [--after SIZE]", about: "list the checkpoints witnesses cosigned, and which reached the quorum, offline", text: witnessedHelp},
		{name: "mqtt-user add", args: "--file FILE --user NAME", about: "add a client of the embedded MQTT broker; password on stdin"},
		{name: "mqtt-user list", args: "--file FILE", about: "list the embedded MQTT broker's clients"},
		{name: "simulate", about: "publish simulated shipper telemetry over MQTT"},
		{name: "version", about: "print the version"},
		{name: "help", args: "[COMMAND]", about: "this text, or a command's synopsis and flags"},
	}
}

const serveHelp = `Serves the HTTP API and the web UI on --http, and takes cold-chain telemetry
over MQTT: from an embedded broker on --mqtt-listen, or from an external one
with --mqtt-url.

--data must hold a ledger (coid.db). "coid user add" creates one with its
first user; --init starts an empty one instead (its users are then added
with the service stopped). Without either, serve refuses, so a mistyped
--data never starts a second, empty ledger.

SIGHUP reloads the --mqtt-auth accounts; SIGINT or SIGTERM shut down.
`

// helpRequest is returned by dispatch when the user asked for help
// (--help, -h, or "coid help"); run prints the help and exits 0.
type helpRequest struct {
	command string        // "" for coid itself, "serve", "user", "user add", ...
	flags   *flag.FlagSet // the command's flags, when it has any
}

func (h helpRequest) Error() string { return "help requested: coid " + h.command }

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// commandName is the command a flag set belongs to, without "coid ".
func commandName(fs *flag.FlagSet) string { return strings.TrimPrefix(fs.Name(), "coid ") }

// flagError turns an error of fs.Parse into a help request or a one-line
// usage error that names the command once and points at its help.
func flagError(fs *flag.FlagSet, err error) error {
	name := commandName(fs)
	if errors.Is(err, flag.ErrHelp) {
		return helpRequest{command: name, flags: fs}
	}
	msg := err.Error()
	if bad, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		msg = "unknown flag " + bad
		if near := nearestFlag(fs, strings.TrimLeft(bad, "-")); near != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", dashed(near))
		}
	}
	return usagef("%s: %s; \"coid %s --help\" lists its flags", name, msg, name)
}

// quiet stops the flag package printing errors and usage on its own:
// flagError and writeHelp say what is needed, once.
func quiet(fs *flag.FlagSet) { fs.SetOutput(io.Discard) }

// nearestFlag returns the flag of fs within two edits of name, if any.
func nearestFlag(fs *flag.FlagSet, name string) string {
	best, bestD := "", 3
	fs.VisitAll(func(f *flag.Flag) {
		if d := editDistance(name, f.Name); d < bestD {
			best, bestD = f.Name, d
		}
	})
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// lookup returns the help entry of the command name.
func lookup(name string) (commandHelp, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return commandHelp{}, false
}

// isGroup reports whether name is a command with subcommands (user,
// mqtt-user).
func isGroup(name string) bool { return len(subcommands(name)) > 0 }

// subcommands lists the subcommands of group.
func subcommands(group string) []string {
	var subs []string
	for _, c := range commands() {
		if sub, ok := strings.CutPrefix(c.name, group+" "); ok {
			subs = append(subs, sub)
		}
	}
	return subs
}

// commandFlags returns the flag set of command name as it is with no
// environment, so defaults are the built-in ones (and no secret taken from
// a variable is ever shown), or nil for a command without flags. It asks
// the command itself, so the help cannot drift from the code.
func commandFlags(name string) *flag.FlagSet {
	args := append(strings.Fields(name), "--help")
	err := dispatch(context.Background(), args, nil, strings.NewReader(""), io.Discard, io.Discard)
	if h := (helpRequest{}); errors.As(err, &h) {
		return h.flags
	}
	return nil
}

// writeHelp writes the help of command name ("" for coid itself) to w.
func writeHelp(w io.Writer, name string) error {
	name = strings.Join(strings.Fields(name), " ")
	var text string
	switch {
	case name == "":
		text = topUsage()
	case isGroup(name):
		text = groupUsage(name)
	default:
		var b strings.Builder
		if !writeCommandHelp(&b, name) {
			return usagef("help: unknown command %q; \"coid help\" lists the commands", name)
		}
		text = b.String()
	}
	_, err := io.WriteString(w, text)
	return err
}

// writeCommandHelp writes the synopsis, description and flags of command
// name; false if there is no such command.
func writeCommandHelp(b *strings.Builder, name string) bool {
	c, known := lookup(name)
	fs := commandFlags(name)
	if !known && fs == nil {
		return false
	}
	if strings.HasPrefix(c.text, "usage:") {
		b.WriteString(c.text) // label and report: their own synopsis and text
	} else {
		fmt.Fprintf(b, "usage: %s\n\n", synopsis(c, fs != nil))
		if c.about != "" {
			fmt.Fprintf(b, "%s%s.\n\n", strings.ToUpper(c.about[:1]), c.about[1:])
		}
		if c.text != "" {
			b.WriteString(c.text + "\n")
		}
	}
	writeFlags(b, fs)
	return true
}

func synopsis(c commandHelp, hasFlags bool) string {
	s := "coid " + c.name
	if hasFlags {
		s += " [flags]"
	}
	if c.args != "" {
		s += " " + c.args
	}
	return s
}

// writeFlags lists every flag of fs, its argument, what it does (with the
// variable that sets its default) and its built-in default.
func writeFlags(b *strings.Builder, fs *flag.FlagSet) {
	if fs == nil {
		return
	}
	b.WriteString("Flags (a COID_* variable named beside a flag sets its default; the flag overrides it):\n")
	fs.VisitAll(func(f *flag.Flag) {
		typ, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(b, "  %s", dashed(f.Name))
		if typ != "" {
			fmt.Fprintf(b, " %s", typ)
		}
		fmt.Fprintf(b, "\n        %s", strings.ReplaceAll(usage, "\n", "\n        "))
		switch d := f.DefValue; {
		case d == "" || d == "0" || d == "false" || d == "0s" || d == "[]":
		case typ == "string":
			fmt.Fprintf(b, " (default %q)", d)
		default:
			fmt.Fprintf(b, " (default %s)", d)
		}
		b.WriteString("\n")
	})
}

// groupUsage is the help of a command with subcommands: each
// subcommand's synopsis and flags.
func groupUsage(group string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: coid %s SUBCOMMAND [flags]\n\nSubcommands:\n", group)
	for _, sub := range subcommands(group) {
		c, _ := lookup(group + " " + sub)
		fmt.Fprintf(&b, "  %-10s %s\n", sub, c.about)
	}
	for _, sub := range subcommands(group) {
		b.WriteString("\n")
		writeCommandHelp(&b, group+" "+sub)
	}
	return b.String()
}

var variableName = regexp.MustCompile(`COID_[A-Z0-9_]+`)

// variable is one COID_* environment variable and the flags it sets.
type variable struct {
	name  string
	flags []string // "--data (serve, verify, user, label, report)"
}

// variables lists every COID_* variable named by a flag of any command,
// in the order help shows the commands.
func variables() []variable {
	type use struct{ v, flag string }
	var order []use
	cmds := map[use][]string{}
	for _, c := range commands() {
		fs := commandFlags(c.name)
		if fs == nil {
			continue
		}
		top, _, _ := strings.Cut(c.name, " ")
		fs.VisitAll(func(f *flag.Flag) {
			for _, v := range variableName.FindAllString(f.Usage, -1) {
				u := use{v, dashed(f.Name)}
				if _, ok := cmds[u]; !ok {
					order = append(order, u)
				}
				if l := cmds[u]; len(l) == 0 || l[len(l)-1] != top {
					cmds[u] = append(l, top)
				}
			}
		})
	}
	var vs []variable
	index := map[string]int{}
	for _, u := range order {
		i, ok := index[u.v]
		if !ok {
			i = len(vs)
			index[u.v] = i
			vs = append(vs, variable{name: u.v})
		}
		vs[i].flags = append(vs[i].flags, fmt.Sprintf("%s (%s)", u.flag, strings.Join(cmds[u], ", ")))
	}
	return vs
}

// topUsage is coid's own help: the commands and every variable.
func topUsage() string {
	var b strings.Builder
	b.WriteString("coid: chain of identity and custody for autologous cell therapies\n\n" +
		"usage: coid COMMAND [flags] [arguments]\n\nCommands:\n")
	for _, c := range commands() {
		line := "  " + c.name
		if c.args != "" {
			line += " " + c.args
		}
		if len(line) > 34 {
			b.WriteString(line + "\n")
			line = ""
		}
		fmt.Fprintf(&b, "%-36s%s\n", line, c.about)
	}
	b.WriteString("\n\"coid COMMAND --help\" (or \"coid help COMMAND\") prints a command's synopsis and every flag,\n" +
		"e.g. coid serve --help, coid user add --help.\n\n" +
		"Environment: each variable sets the default of the flags named; a flag given overrides it.\n")
	for _, v := range variables() {
		fmt.Fprintf(&b, "  %-22s %s\n", v.name, strings.Join(v.flags, "; "))
	}
	return b.String()
}
