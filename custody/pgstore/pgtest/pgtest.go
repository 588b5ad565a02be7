// Package pgtest gives tests their own empty PostgreSQL schema on the test
// server: it owns how tests find that server (COID_TEST_POSTGRES_URL) and
// the schemas they create and drop.
package pgtest

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// DefaultURL is the test server when COID_TEST_POSTGRES_URL is not set.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// ServerURL returns the test server's URL: COID_TEST_POSTGRES_URL, or
// DefaultURL.
func ServerURL() string {
	if u := os.Getenv("COID_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// Schema creates a schema with a random name on the test server and
// returns a URL whose connections use it (search_path); the schema is
// dropped when the test ends. Without a server the test is skipped, or
// fails under CI=true, where PostgreSQL is required.
func Schema(tb testing.TB) string {
	tb.Helper()
	ctx := context.Background()
	base := ServerURL()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("PostgreSQL required in CI (COID_TEST_POSTGRES_URL %s): %v", base, err)
		}
		tb.Skipf("no PostgreSQL at %s (set COID_TEST_POSTGRES_URL): %v", base, err)
	}
	defer conn.Close(ctx)
	name := "coidtest_" + strings.ToLower(rand.Text()[:16])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{name}.Sanitize()); err != nil {
		tb.Fatalf("create test schema: %v", err)
	}
	tb.Cleanup(func() {
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Errorf("drop test schema %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			tb.Errorf("drop test schema %s: %v", name, err)
		}
	})
	u, err := withSearchPath(base, name)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

// withSearchPath returns the connection URL base with search_path set to
// schema.
func withSearchPath(base, schema string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("COID_TEST_POSTGRES_URL: %w", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}
