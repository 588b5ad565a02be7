package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/coid-project/coid/custody"
)

// The account subcommands of coid user that run through the service's API
// (--url, the caller's token in COID_TOKEN): passwd, reset, disable,
// enable, tokens and revoke. The service holds the data directory, and
// every change is audited there with the caller as its author.

func runAccount(ctx context.Context, args, env []string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := args[0]
	var s settings
	var id, serverURL, reason, tokenID string
	fs := newFlags("user "+cmd, env, stderr, &s)
	fs.StringVar(&serverURL, "url", getenv(env, "COID_URL"), "base URL of the running service, e.g. https://coid.example:8080 (COID_URL); the caller's API token is read from COID_TOKEN")
	switch cmd {
	case "passwd":
	case "tokens":
		fs.StringVar(&id, "id", "", "user ID whose tokens to list (administrators); default: your own")
	case "revoke":
		fs.StringVar(&id, "id", "", "user ID whose token to revoke (administrators); default: your own")
		fs.StringVar(&tokenID, "token", "", "the token's ID, as coid user tokens lists it (never the token itself)")
		fs.StringVar(&reason, "reason", "", "why (required to revoke another user's token)")
	default: // reset, disable, enable
		fs.StringVar(&id, "id", "", "user ID")
		fs.StringVar(&reason, "reason", "", "why, for the audit trail (required)")
	}
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	op := "user " + cmd
	base, err := url.Parse(serverURL)
	if serverURL == "" || err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return usagef("%s: --url must be the service's http:// or https:// base URL, e.g. https://coid.example:8080", op)
	}
	tok := getenv(env, "COID_TOKEN")
	if tok == "" {
		return usagef("%s: set COID_TOKEN to your API token", op)
	}
	cl := apiClient{base: strings.TrimSuffix(base.String(), "/") + "/api/v1", token: tok, op: op}
	needID := cmd == "reset" || cmd == "disable" || cmd == "enable"
	if needID && id == "" {
		return usagef("%s: --id is required", op)
	}
	if id != "" {
		if err := custody.ValidateUserID(id); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	if needID && strings.TrimSpace(reason) == "" {
		return usagef("%s: --reason is required: it goes into the audit trail", op)
	}
	owner := "/me"
	if id != "" {
		owner = "/users/" + url.PathEscape(id)
	}
	switch cmd {
	case "passwd":
		lines, err := readLines(stdin, 2)
		if err != nil {
			return usagef("user passwd: give the current password, then the new one, each on a line of stdin")
		}
		var out custody.PasswordChanged
		if err := cl.do(ctx, http.MethodPost, "/me/password", custody.PasswordChange{Current: lines[0], New: lines[1]}, &out); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "password changed for %s; %d other API token(s) revoked\n", out.User.ID, len(out.RevokedTokens))
		if !out.Expires.IsZero() {
			fmt.Fprintf(stdout, "the new password expires on %s\n", custody.FormatTime(out.Expires))
		}
	case "reset":
		lines, err := readLines(stdin, 1)
		if err != nil {
			return usagef("user reset: give the temporary password on stdin, e.g. printf '%%s\\n' \"$TEMPORARY\" | coid user reset ...")
		}
		if err := cl.do(ctx, http.MethodPost, owner+"/reset", map[string]string{"password": lines[0], "reason": reason}, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "password of %s reset; it must be changed at the next sign-in\n", id)
	case "disable", "enable":
		if err := cl.do(ctx, http.MethodPost, owner+"/"+cmd, map[string]string{"reason": reason}, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%sd %s\n", cmd, id)
	case "tokens":
		var out struct {
			Tokens []struct {
				custody.TokenInfo
				Current bool `json:"current"`
			} `json:"tokens"`
		}
		if err := cl.do(ctx, http.MethodGet, owner+"/tokens", nil, &out); err != nil {
			return err
		}
		when := func(t time.Time) string {
			if t.IsZero() {
				return "-"
			}
			return custody.FormatTime(t)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TOKEN ID\tUSER\tCREATED\tLAST USED\tTHIS ONE")
		for _, t := range out.Tokens {
			cur := ""
			if t.Current {
				cur = "yes"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.User, when(t.Created), when(t.LastUsed), cur)
		}
		return tw.Flush()
	case "revoke":
		if tokenID == "" {
			return usagef("user revoke: --token is required (coid user tokens lists the IDs)")
		}
		var body any
		if reason != "" {
			body = map[string]string{"reason": reason}
		}
		if err := cl.do(ctx, http.MethodPost, owner+"/tokens/"+url.PathEscape(tokenID)+"/revoke", body, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked token %s\n", tokenID)
	}
	return nil
}

// passwordFlags binds serve's password policy flags.
func passwordFlags(fs *flag.FlagSet, env []string) *custody.PasswordPolicy {
	var p custody.PasswordPolicy
	fs.IntVar(&p.ExpiryDays, "password-expiry-days", envInt(env, "COID_PASSWORD_EXPIRY_DAYS", 0),
		"days a password is good for before its user must change it; 0: no expiry (COID_PASSWORD_EXPIRY_DAYS)")
	fs.IntVar(&p.History, "password-history", envInt(env, "COID_PASSWORD_HISTORY", 0),
		"how many recent passwords, the current one included, a new one may not repeat; 0: only the current one (COID_PASSWORD_HISTORY)")
	return &p
}

// readLines reads n lines from r, without their line ends; none may be
// empty.
func readLines(r io.Reader, n int) ([]string, error) {
	if r == nil {
		return nil, io.ErrUnexpectedEOF
	}
	br := bufio.NewReader(r)
	out := make([]string, 0, n)
	for range n {
		line, err := br.ReadString('\n')
		if err != nil && (err != io.EOF || line == "") {
			return nil, io.ErrUnexpectedEOF
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return nil, io.ErrUnexpectedEOF
		}
		out = append(out, line)
	}
	return out, nil
}

// apiClient calls the running service's JSON API with a bearer token.
type apiClient struct {
	base, token, op string
}

// do sends body (nil: none) as JSON and decodes a 2xx answer into out
// (nil: discarded). An error answer becomes an error wrapping the sentinel
// of its status, with the service's message.
func (cl apiClient) do(ctx context.Context, method, path string, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s: %w", cl.op, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, cl.base+path, rd)
	if err != nil {
		return fmt.Errorf("%s: %w", cl.op, err)
	}
	req.Header.Set("Authorization", "Bearer "+cl.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", cl.op, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 == 2 {
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s: the service's answer does not decode: %v", cl.op, err)
		}
		return nil
	}
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	msg := http.StatusText(resp.StatusCode)
	if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
		msg = e.Error.Message
	}
	sentinel := map[int]error{http.StatusBadRequest: custody.ErrInvalid, http.StatusUnauthorized: custody.ErrUnauthenticated,
		http.StatusForbidden: custody.ErrForbidden, http.StatusNotFound: custody.ErrNotFound, http.StatusConflict: custody.ErrConflict,
		http.StatusTooManyRequests: custody.ErrThrottled}[resp.StatusCode]
	if e.Error.Code == "password_change_required" {
		sentinel = custody.ErrPasswordChange
		msg += " (coid user passwd changes it)"
	}
	if sentinel == nil {
		return fmt.Errorf("%s: the service answered %d: %s", cl.op, resp.StatusCode, msg)
	}
	return fmt.Errorf("%s: the service answered %d: %s: %w", cl.op, resp.StatusCode, msg, sentinel)
}
