package api_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestNoRoleListsInAPI: who may do what is custody's (custody.MayEnroll,
// MayUseConsole, ...); the JSON API and the web UI name no person's role.
func TestNoRoleListsInAPI(t *testing.T) {
	role := regexp.MustCompile(`custody\.Role(Coordinator|Nurse|Courier|Manufacturing|QA|Admin)\b`)
	var files []string
	for _, pattern := range []string{"*.go", "web/*.go"} { // the JSON API and the web UI (api/web)
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if !slices.Contains(files, "web/web.go") {
		t.Fatalf("the web UI's files were not found: %v", files)
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
