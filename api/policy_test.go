package api_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestNoRoleListsInAPI: who may do what is custody's (custody.MayEnroll,
// MayUseConsole, ...); the JSON API and the web UI name no person's role.
func TestNoRoleListsInAPI(t *testing.T) {
	role := regexp.MustCompile(`custody\.Role(Coordinator|Nurse|Courier|Manufacturing|QA|Admin)\b`)
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if role.MatchString(line) {
				t.Errorf("%s:%d names a role; ask custody's policy instead: %s", f, i+1, strings.TrimSpace(line))
			}
		}
	}
}
