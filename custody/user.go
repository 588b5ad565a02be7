package custody

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxFailedSignatures is how many of a user's own wrong signature
// passwords in a row lock the user's signing until an administrator
// unlocks it (21 CFR Part 11 11.300(d)). Wrong passwords others give for
// the user's ID never lock it (lockout.go).
const MaxFailedSignatures = 5

// User is a person who can sign records and call the API.
type User struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Role Role   `json:"role"`
	// Organisation is the code of the registered organisation the person
	// belongs to; empty for an account made before the network was
	// registered (such an account signs only on chains whose sites are not
	// registered, and reads only those).
	Organisation string `json:"organisation,omitempty"`
	// Sites are the codes of the registered sites where the person works,
	// sorted: the steps they sign and the chains they read are those of
	// these sites. Couriers and administrators work for their organisation
	// and hold no sites.
	Sites        []string  `json:"sites,omitempty"`
	PasswordHash string    `json:"password_hash,omitempty"`
	Created      time.Time `json:"created"`
	// FailedSignatures counts the user's own wrong signature passwords in
	// a row.
	FailedSignatures int  `json:"failed_signatures"`
	Locked           bool `json:"locked"`
	Disabled         bool `json:"disabled"`
	// MustChangePassword is set by an administrator's reset: until the
	// user changes the password, the account may do nothing else.
	MustChangePassword bool `json:"change_required,omitempty"`
	// PasswordChanged is when the password was last set; zero for
	// accounts from before coid recorded it (Created stands in).
	PasswordChanged time.Time `json:"credential_set,omitzero"`
	// PasswordHistory holds the hashes of earlier passwords, newest
	// first, so they are not used again (PasswordPolicy.History).
	PasswordHistory []string `json:"password_history,omitempty"`
	// FeedTokens are the user's calendar feed tokens (feed.go), stored
	// hashed.
	FeedTokens []FeedToken `json:"feed_tokens,omitempty"`
}

// WorksAt reports whether the user works at the registered site code.
func (u User) WorksAt(code string) bool { return code != "" && slices.Contains(u.Sites, code) }

// Public returns the user without its password hash and history.
func (u User) Public() User {
	u.PasswordHash = ""
	u.PasswordHistory = nil
	u.FeedTokens = nil
	return u
}

// PasswordHasher derives and checks password hashes with a memory-hard
// KDF. Implementations live outside custody (custody/passwd).
type PasswordHasher interface {
	// Hash returns an encoded hash of password that includes its salt and
	// parameters.
	Hash(password string) (string, error)
	// Verify reports whether password matches encoded.
	Verify(encoded, password string) (bool, error)
}

// TokenPrefix starts every API token so leaked tokens are recognisable.
const TokenPrefix = "coid_"

// NewToken returns a new random API token and the hash under which it is
// stored. The token itself is shown once and never stored.
func NewToken() (string, Hash, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", Hash{}, fmt.Errorf("new token: %w", err)
	}
	t := TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return t, TokenHash(t), nil
}

// TokenHash returns the hash under which an API token is stored.
func TokenHash(token string) Hash { return sha256.Sum256([]byte(token)) }

// ValidateUserID checks a user ID: 1-64 characters of letters, digits,
// '.', '_', '-' and '@', starting with a letter or digit.
func ValidateUserID(id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("user id must be 1-64 characters: %w", ErrInvalid)
	}
	for i, c := range id {
		ok := c < utf8.RuneSelf && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			i > 0 && strings.ContainsRune("._-@", c))
		if !ok {
			return fmt.Errorf("user id %q: only letters, digits and . _ - @ (not first): %w", id, ErrInvalid)
		}
	}
	if strings.EqualFold(id, SystemUser) { // "System" would pass for coid's own signature
		return fmt.Errorf("user id %q is reserved: %w", id, ErrInvalid)
	}
	return nil
}

// validText checks a free-text field: valid UTF-8, no control characters,
// not blank when required, at most max bytes.
func validText(field, s string, required bool, max int) error {
	if required && strings.TrimSpace(s) == "" {
		return fmt.Errorf("%s is required: %w", field, ErrInvalid)
	}
	if len(s) > max {
		return fmt.Errorf("%s is longer than %d bytes: %w", field, max, ErrInvalid)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8: %w", field, ErrInvalid)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("%s contains a control character: %w", field, ErrInvalid)
		}
	}
	return nil
}

// PHI is a patient's identifying information. It is kept outside the
// ledger; the enroll record holds only Commitment(), so PHI can be checked,
// corrected or erased without breaking the hash chain.
type PHI struct {
	Name      string `json:"name"`
	BirthDate string `json:"birth_date"`
	MRN       string `json:"mrn"`
	// Salt is 32 random bytes that make the commitment unguessable.
	Salt []byte `json:"salt"`
}

// Validate checks the patient fields.
func (p PHI) Validate(now time.Time) error {
	if err := validText("patient.name", p.Name, true, 200); err != nil {
		return err
	}
	if err := validText("patient.mrn", p.MRN, true, 64); err != nil {
		return err
	}
	d, err := time.Parse(time.DateOnly, p.BirthDate)
	if err != nil {
		return fmt.Errorf("patient.birth_date must be YYYY-MM-DD: %w", ErrInvalid)
	}
	if d.After(now) || d.Year() < 1900 {
		return fmt.Errorf("patient.birth_date is not a plausible birth date: %w", ErrInvalid)
	}
	return nil
}

// Commitment returns the salted commitment to the patient fields stored in
// the ledger: hex HMAC-SHA-256 keyed by Salt over the JSON array
// [name, birth_date, mrn].
func (p PHI) Commitment() string {
	b, _ := json.Marshal([]string{p.Name, p.BirthDate, p.MRN})
	m := hmac.New(sha256.New, p.Salt)
	m.Write(b)
	return hex.EncodeToString(m.Sum(nil))
}

// Digest returns a keyed digest of a scanned code under the patient's salt,
// so a record can show that two scans differed without holding either.
func (p PHI) Digest(code string) string {
	m := hmac.New(sha256.New, p.Salt)
	m.Write([]byte("scan\x00" + code))
	return hex.EncodeToString(m.Sum(nil))[:16]
}

// Initials returns the patient's initials, the most of the name a report
// shows.
func (p PHI) Initials() string {
	var b strings.Builder
	for _, f := range strings.Fields(p.Name) {
		r, _ := utf8.DecodeRuneInString(f)
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}
