package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/coid-project/coid/custody"
)

// testUsersPaged: UsersAfter pages the users in ID order without password
// material; users created between pages after the cursor are listed by
// the later pages, those before it are not, and none is listed twice.
func testUsersPaged(t *testing.T, s Store) {
	ctx := context.Background()
	create := func(id string) {
		t.Helper()
		u := custody.User{ID: id, Name: "Name " + id, Role: custody.RoleNurse, PasswordHash: "$argon2id$stub", Created: t0}
		if err := s.CreateUser(ctx, u, custody.TokenHash("coid_token_"+id)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 7 {
		create(fmt.Sprintf("nurse%d", 2*i+1)) // nurse1, nurse11, nurse13, nurse3, ... in ID order
	}
	var ids []string
	after := ""
	for page := 0; ; page++ {
		got, err := s.UsersAfter(ctx, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range got {
			if u.PasswordHash != "" {
				t.Fatalf("UsersAfter lists %s with its password hash", u.ID)
			}
			ids = append(ids, u.ID)
		}
		if len(got) < 2 {
			break
		}
		after = got[len(got)-1].ID
		if page == 0 {
			create("nurse0") // before the cursor: not listed
			create("nurse8") // after it: listed
		}
		if page > 10 {
			t.Fatalf("paging does not end: %v", ids)
		}
	}
	want := []string{"nurse1", "nurse11", "nurse13", "nurse3", "nurse5", "nurse7", "nurse8", "nurse9"}
	if !slices.Equal(ids, want) {
		t.Fatalf("paged users %v, want %v", ids, want)
	}
	if got, err := s.UsersAfter(ctx, "nurse4", 1); err != nil || len(got) != 1 || got[0].ID != "nurse5" {
		t.Fatalf("UsersAfter(an ID not stored) = %v, %v; want nurse5", got, err)
	}
	if _, err := s.UsersAfter(ctx, "", 0); err == nil {
		t.Fatal("UsersAfter with limit 0: no error")
	}
}
