package web

import (
	"net/url"
	"strings"
	"testing"
)

// browserResolve follows a Location value as a browser does (the WHATWG
// URL parser): leading and trailing C0 controls and spaces are trimmed,
// tabs and line breaks anywhere are dropped, a backslash is a slash in an
// http(s) URL; then the reference is resolved against base.
func browserResolve(base, loc string) (*url.URL, error) {
	loc = strings.TrimFunc(loc, func(r rune) bool { return r <= 0x20 })
	loc = strings.NewReplacer("\t", "", "\n", "", "\r", "", "\\", "/").Replace(loc)
	b, _ := url.Parse(base)
	ref, err := url.Parse(loc)
	if err != nil {
		return nil, err
	}
	return b.ResolveReference(ref), nil
}

// TestSafeNext: a post-sign-in destination is kept only when a browser
// would stay on this site with it. "/\t/evil.example" passed the old
// check and browsers went to evil.example.
func TestSafeNext(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"/scan", "/scan"},
		{"/chains/CHA999926000001?tab=legs#x", "/chains/CHA999926000001?tab=legs#x"},
		{"  /scan \n", "/scan"},
		{"/sc\tan", "/scan"},
		{"/a\\b", "/a/b"},
		{"/%2F%2Fevil.example", "/%2F%2Fevil.example"},
		{"", ""},
		{"/\t/evil.example/x", ""},
		{"/\n/evil.example", ""},
		{"/\r/evil.example", ""},
		{"\t//evil.example", ""},
		{"/\\evil.example", ""},
		{"\\/evil.example", ""},
		{"\\\\evil.example", ""},
		{"//evil.example", ""},
		{" //evil.example", ""},
		{"\x00//evil.example", ""},
		{"\x01/\t/evil.example", ""},
		{"https://evil.example/", ""},
		{"https:/evil.example/", ""},
		{"javascript:alert(1)", ""},
		{"java\tscript:alert(1)", ""},
		{"evil.example", ""},
		{"scan", ""},
		{"/login", ""},
		{"/login?next=/scan", ""},
		{"/ok\x01x", ""},
		{"/ok\x7f", ""},
	} {
		if got := safeNext(c.in); got != c.want {
			t.Errorf("safeNext(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// FuzzSafeNext: whatever is given, what safeNext keeps takes a browser to
// this site, has nothing left for a browser to normalise, and is kept
// unchanged when checked again.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/scan", "/\t/evil.example", "/\\evil", "//x", " /a", "https://x", "/login", "/a?b=c#d", "\x00/"} {
		f.Add(s)
	}
	const base = "https://coid.example/login"
	f.Fuzz(func(t *testing.T, in string) {
		out := safeNext(in)
		if out == "" {
			return
		}
		u, err := browserResolve(base, out)
		if err != nil || u.Scheme != "https" || u.Host != "coid.example" || u.User != nil {
			t.Fatalf("safeNext(%q) = %q leads to %v (%v)", in, out, u, err)
		}
		if strings.ContainsAny(out, "\t\n\r\\") || strings.TrimFunc(out, func(r rune) bool { return r <= 0x20 }) != out {
			t.Fatalf("safeNext(%q) = %q is not normalised", in, out)
		}
		if !strings.HasPrefix(out, "/") || strings.HasPrefix(out, "//") || strings.HasPrefix(u.Path, "/login") {
			t.Fatalf("safeNext(%q) = %q", in, out)
		}
		if again := safeNext(out); again != out {
			t.Fatalf("safeNext(%q) = %q, but safeNext of that = %q", in, out, again)
		}
	})
}
