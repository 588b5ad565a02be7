package main

import (
	"context"
	"errors"
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// codeSubcommands returns the string literals the function fn in file
// compares args[0] with (switch cases, == and !=): the commands or
// subcommands it dispatches on, read from the code itself.
func codeSubcommands(t *testing.T, file, fn string) []string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	isArgs0 := func(e ast.Expr) bool {
		ix, ok := e.(*ast.IndexExpr)
		if !ok {
			return false
		}
		id, ok1 := ix.X.(*ast.Ident)
		lit, ok2 := ix.Index.(*ast.BasicLit)
		return ok1 && ok2 && id.Name == "args" && lit.Value == "0"
	}
	var names []string
	add := func(e ast.Expr) {
		if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			s, _ := strconv.Unquote(lit.Value)
			if !slices.Contains(names, s) {
				names = append(names, s)
			}
		}
	}
	found := false
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Name.Name != fn {
			continue
		}
		found = true
		ast.Inspect(fd.Body, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SwitchStmt:
				if n.Tag != nil && isArgs0(n.Tag) {
					for _, st := range n.Body.List {
						for _, e := range st.(*ast.CaseClause).List {
							add(e)
						}
					}
				}
			case *ast.BinaryExpr:
				if n.Op == token.EQL || n.Op == token.NEQ {
					if isArgs0(n.X) {
						add(n.Y)
					} else if isArgs0(n.Y) {
						add(n.X)
					}
				}
			}
			return true
		})
	}
	if !found {
		t.Fatalf("no func %s in %s", fn, file)
	}
	return names
}

// TestHelp: every command and subcommand the code dispatches on answers
// --help, -h and "coid help ..." on stdout with exit 0: its synopsis and
// every flag with the variables named beside it. The list of commands is
// read from the code, so a new one without help fails here.
func TestHelp(t *testing.T) {
	var names []string
	for _, c := range codeSubcommands(t, "main.go", "dispatch") {
		if c == "--version" || isHelp(c) {
			continue
		}
		names = append(names, c)
	}
	for file, group := range map[string]string{"admin.go": "user", "mqttuser.go": "mqtt-user", "registry.go": "registry", "key.go": "key"} {
		if !slices.Contains(names, group) {
			t.Fatalf("dispatch has no %q", group)
		}
		for _, sub := range codeSubcommands(t, file, "run"+map[string]string{"user": "User", "mqtt-user": "MQTTUser", "registry": "Registry", "key": "Key"}[group]) {
			names = append(names, group+" "+sub)
		}
	}
	for _, n := range names {
		if _, ok := lookup(n); !ok && !isGroup(n) {
			t.Errorf("the code knows command %q, which help.go's commands() does not list", n)
		}
	}
	for _, c := range commands() {
		if !slices.Contains(names, c.name) && c.name != "help" {
			t.Errorf("commands() lists %q, which the code does not know", c.name)
		}
	}
	if !slices.Contains(names, "user add") || !slices.Contains(names, "serve") {
		t.Fatalf("commands read from the code: %q", names)
	}

	top, _, exit, err := runCmd(t, nil, "--help")
	if err != nil || !strings.Contains(top, "usage: coid COMMAND") {
		t.Fatalf("coid --help: exit %d (%v)\n%s", exit, err, top)
	}
	for _, args := range [][]string{{"-h"}, {"help"}, {"-help"}} {
		if out, _, exit, err := runCmd(t, nil, args...); err != nil || out != top {
			t.Errorf("coid %s: exit %d (%v), same text as --help: %v", args[0], exit, err, out == top)
		}
	}
	for _, name := range append(names, "help") {
		t.Run(name, func(t *testing.T) {
			words := strings.Fields(name)
			if !strings.Contains(top, "  "+name) {
				t.Errorf("coid --help does not list %q", name)
			}
			var texts []string
			for _, args := range [][]string{append(slices.Clone(words), "--help"), append(slices.Clone(words), "-h"), append([]string{"help"}, words...)} {
				out, errOut, exit, err := runCmd(t, nil, args...)
				if err != nil || exit != 0 || errOut != "" {
					t.Fatalf("coid %s: exit %d (%v), stderr %q", strings.Join(args, " "), exit, err, errOut)
				}
				texts = append(texts, out)
			}
			if texts[1] != texts[0] || texts[2] != texts[0] {
				t.Error("--help, -h and coid help give different texts")
			}
			help := texts[0]
			if !strings.Contains(help, "usage: coid "+name) {
				t.Errorf("no synopsis \"usage: coid %s\" in\n%s", name, help)
			}
			checkFlags := func(cmd string) {
				fs := commandFlags(cmd)
				if fs == nil {
					return
				}
				fs.VisitAll(func(f *flag.Flag) {
					if !strings.Contains(help, dashed(f.Name)+" ") && !strings.Contains(help, dashed(f.Name)+"\n") {
						t.Errorf("%s: flag %s missing from the help", cmd, dashed(f.Name))
					}
					for _, v := range variableName.FindAllString(f.Usage, -1) {
						if !strings.Contains(help, v) {
							t.Errorf("%s: variable %s of %s missing from the help", cmd, v, dashed(f.Name))
						}
					}
				})
			}
			if isGroup(name) {
				for _, sub := range subcommands(name) {
					checkFlags(name + " " + sub)
				}
			} else {
				checkFlags(name)
			}
		})
	}

	// Help shows built-in defaults, never a value from the environment:
	// a password there must not reach a terminal or a log.
	out, _, _, err := runCmd(t, []string{"COID_MQTT_PASSWORD=hunter2-secret", "COID_DATA=/from/env"}, "serve", "--help")
	if err != nil || strings.Contains(out, "hunter2-secret") || strings.Contains(out, "/from/env") || !strings.Contains(out, `"./data"`) {
		t.Errorf("serve --help with variables set: %v\n%s", err, out)
	}
	if _, _, exit, err := runCmd(t, nil, "help", "frobnicate"); exit != 2 || err == nil {
		t.Errorf("coid help frobnicate: exit %d (%v), want 2", exit, err)
	}
}

// TestHelpListsEveryVariable: every COID_* variable the command reads (a
// string literal in any of its source files, so variables other changes
// add are picked up) is listed by coid --help and named in the help of a
// command; and every flag whose default follows a variable names it.
func TestHelpListsEveryVariable(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	lit := regexp.MustCompile(`"(COID_[A-Z0-9_]+)"`)
	var vars []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range lit.FindAllStringSubmatch(string(b), -1) {
			if !slices.Contains(vars, m[1]) {
				vars = append(vars, m[1])
			}
		}
	}
	if len(vars) < 10 || !slices.Contains(vars, "COID_DATA") || !slices.Contains(vars, "COID_MQTT_TLS_CERT") {
		t.Fatalf("variables read from the code: %q", vars)
	}
	top, _, _, err := runCmd(t, nil, "help")
	if err != nil {
		t.Fatal(err)
	}
	_, env, _ := strings.Cut(top, "Environment")
	for _, v := range vars {
		if !regexp.MustCompile(`(?m)^  ` + v + ` +--`).MatchString(env) {
			t.Errorf("coid --help does not list %s with its flags", v)
		}
		named := false
		for _, c := range commands() {
			out, _, _, _ := runCmd(t, nil, append(strings.Fields(c.name), "--help")...)
			named = named || strings.Contains(out, v)
		}
		if !named {
			t.Errorf("no command's --help names %s", v)
		}
	}
	// A flag whose default a variable changes must name that variable.
	for _, c := range commands() {
		plain := commandFlags(c.name)
		if plain == nil {
			continue
		}
		for _, v := range vars {
			err := dispatch(context.Background(), append(strings.Fields(c.name), "--help"), []string{v + "=4242"},
				strings.NewReader(""), io.Discard, io.Discard)
			var h helpRequest
			if !errors.As(err, &h) || h.flags == nil {
				t.Fatalf("%s --help with %s set: %v", c.name, v, err)
			}
			h.flags.VisitAll(func(f *flag.Flag) {
				if f.DefValue != plain.Lookup(f.Name).DefValue && !strings.Contains(f.Usage, v) {
					t.Errorf("%s %s follows %s, and its help does not say so: %q", c.name, dashed(f.Name), v, f.Usage)
				}
			})
		}
	}
}

// TestFlagTypo: a mistyped flag or a stray argument gets one line naming
// the command once (not "coid: coid serve:"), the nearest flag, and where
// the flags are listed; nothing else is printed.
func TestFlagTypo(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"serve", "--htp", "127.0.0.1:1"}, []string{"serve: unknown flag -htp", "did you mean --http?", `"coid serve --help"`}},
		{[]string{"verify", "--dat", "x"}, []string{"verify: unknown flag", "--data?"}},
		{[]string{"user", "add", "--nmae", "N"}, []string{"user add: unknown flag", "--name?", `"coid user add --help"`}},
		{[]string{"label", "X", "--fromat", "pdf"}, []string{"label: unknown flag", "--format?"}},
		{[]string{"report", "--zzzzzzz", "X"}, []string{"report: unknown flag -zzzzzzz;"}},
		{[]string{"simulate", "--rate", "fast"}, []string{"simulate: invalid value", "-rate"}},
		{[]string{"mqtt-user", "list", "--fiel", "f"}, []string{"mqtt-user list: unknown flag", "--file?"}},
		{[]string{"serve", "--data", "x", "stray"}, []string{`serve: unexpected argument "stray"`}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, errOut, exit, err := runCmd(t, nil, tc.args...)
			if err == nil || exit != 2 {
				t.Fatalf("exit %d (%v), want 2", exit, err)
			}
			line := "coid: " + err.Error() // what main prints
			if strings.Contains(line, "coid: coid") || strings.Contains(line, "\n") || out != "" || errOut != "" {
				t.Errorf("printed %q, stdout %q, stderr %q; want one line", line, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(line, w) {
					t.Errorf("%q does not say %q", line, w)
				}
			}
		})
	}
}

// TestVerifyHelpListsExitCodes: a monitoring script acts on verify's exit
// status, so its help names every one of them.
func TestVerifyHelpListsExitCodes(t *testing.T) {
	out, _, exit, err := runCmd(t, nil, "verify", "--help")
	if err != nil || exit != 0 {
		t.Fatalf("coid verify --help: exit %d (%v)", exit, err)
	}
	for _, want := range []string{"Exit status:", "  0  ", "  1  ", "  2  ", "  3  ", "--checkpoint"} {
		if !strings.Contains(out, want) {
			t.Errorf("coid verify --help lacks %q:\n%s", want, out)
		}
	}
}
