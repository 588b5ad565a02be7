package sensors

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/coid-project/coid/custody"
)

// PasswordVerifier checks a password against a stored hash (custody's
// argon2id hasher, custody/passwd, in coid).
type PasswordVerifier interface {
	Verify(encoded, password string) (bool, error)
}

// BrokerAccount is one client the embedded broker lets in: a shipper's
// data logger, or a gateway that publishes for several shippers.
type BrokerAccount struct {
	// User is the MQTT user name.
	User string
	// Hash is the password's argon2id hash (PHC string); the password
	// itself is never kept.
	Hash string
	// Shippers are the shipper IDs whose telemetry topics the account may
	// publish to; "*" allows every shipper (a gateway).
	Shippers []string
}

// MayPublishFor reports whether the account may publish shipper's
// telemetry.
func (a BrokerAccount) MayPublishFor(shipper string) bool {
	return slices.Contains(a.Shippers, "*") || slices.Contains(a.Shippers, shipper)
}

// Line returns the account as a line of a credentials file.
func (a BrokerAccount) Line() string {
	return a.User + ":" + a.Hash + ":" + strings.Join(a.Shippers, ",")
}

// ParseBrokerAccounts reads a credentials file for the embedded broker
// (coid serve --mqtt-auth): one account a line, "user:hash:shippers", where
// hash is an argon2id PHC string ("coid mqtt-user add" writes them) and
// shippers a comma-separated list of shipper IDs or "*"; blank lines and
// lines starting with # are ignored. Any malformed line fails the whole
// file, naming the line, and so does a user named twice. A file without
// accounts gives an empty, non-nil list: a broker given it lets no
// shipper in.
func ParseBrokerAccounts(b []byte) ([]BrokerAccount, error) {
	out := []BrokerAccount{}
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, rest, ok1 := strings.Cut(line, ":")
		hash, shippers, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("credentials line %d: want user:hash:shippers: %w", n, custody.ErrInvalid)
		}
		a := BrokerAccount{User: user, Hash: hash, Shippers: strings.Split(shippers, ",")}
		if err := a.validate(); err != nil {
			return nil, fmt.Errorf("credentials line %d: %w", n, err)
		}
		if seen[user] {
			return nil, fmt.Errorf("credentials line %d: user %s named twice: %w", n, user, custody.ErrInvalid)
		}
		seen[user] = true
		out = append(out, a)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	return out, nil
}

// LoadBrokerAccounts reads and parses the credentials file at path (see
// ParseBrokerAccounts).
func LoadBrokerAccounts(path string) ([]BrokerAccount, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	accounts, err := ParseBrokerAccounts(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return accounts, nil
}

// NewBrokerAccount makes an account for user with the password's hash,
// allowed to publish for shippers (the user's own ID when none are
// given).
func NewBrokerAccount(user, hash string, shippers []string) (BrokerAccount, error) {
	if len(shippers) == 0 {
		shippers = []string{user}
	}
	a := BrokerAccount{User: user, Hash: hash, Shippers: shippers}
	return a, a.validate()
}

func (a BrokerAccount) validate() error {
	if err := custody.ValidateShipperID(a.User); err != nil {
		return fmt.Errorf("user name (the rules of a shipper ID): %w", err)
	}
	if !strings.HasPrefix(a.Hash, "$argon2id$") {
		return fmt.Errorf("user %s: the password hash is not an argon2id PHC string: %w", a.User, custody.ErrInvalid)
	}
	for _, s := range a.Shippers {
		if s == "*" {
			continue
		}
		if err := custody.ValidateShipperID(s); err != nil {
			return fmt.Errorf("user %s: %w", a.User, err)
		}
	}
	return nil
}

// brokerAuth is the embedded broker's view of its accounts. A password
// that verified once is remembered by its SHA-256, so reconnects do not
// each cost an argon2id derivation.
type brokerAuth struct {
	verifier PasswordVerifier
	// internal is coid's own subscriber: its user name and password,
	// made up at start and never written anywhere.
	internalUser, internalPass string

	mu       sync.Mutex
	accounts map[string]BrokerAccount
	proven   map[string][32]byte // user -> SHA-256 of the password that verified
}

// account returns user's account.
func (a *brokerAuth) account(user string) (BrokerAccount, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	acct, ok := a.accounts[user]
	return acct, ok
}

// set replaces the accounts; passwords must verify again. It returns the
// users whose account was removed or changed.
func (a *brokerAuth) set(accounts []BrokerAccount) (map[string]bool, error) {
	m := make(map[string]BrokerAccount, len(accounts))
	for _, acct := range accounts {
		if err := acct.validate(); err != nil {
			return nil, err
		}
		if _, dup := m[acct.User]; dup {
			return nil, fmt.Errorf("user %s named twice: %w", acct.User, custody.ErrInvalid)
		}
		m[acct.User] = acct
	}
	a.mu.Lock()
	changed := map[string]bool{}
	for user, old := range a.accounts {
		if cur, ok := m[user]; !ok || cur.Line() != old.Line() {
			changed[user] = true
		}
	}
	a.accounts, a.proven = m, map[string][32]byte{}
	a.mu.Unlock()
	return changed, nil
}

// authenticate reports whether user and password are those of an account
// (or of coid's own subscriber).
func (a *brokerAuth) authenticate(user, password string) bool {
	if user == a.internalUser {
		return subtle.ConstantTimeCompare([]byte(password), []byte(a.internalPass)) == 1
	}
	sum := sha256.Sum256([]byte(password))
	a.mu.Lock()
	acct, ok := a.accounts[user]
	prev, known := a.proven[user]
	a.mu.Unlock()
	if !ok {
		return false
	}
	if known {
		return subtle.ConstantTimeCompare(prev[:], sum[:]) == 1
	}
	ok, err := a.verifier.Verify(acct.Hash, password)
	if err != nil || !ok {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if cur, ok := a.accounts[user]; !ok || cur.Line() != acct.Line() {
		// A reload changed the account while its password was being
		// checked; the reload's sweep of connections cannot see this one
		// yet, so it must not get in under the old account.
		return false
	}
	a.proven[user] = sum
	return true
}

// allowed reports whether user may use topic: coid's own subscriber every
// topic; an account only publishing to the telemetry topic of a shipper it
// may publish for. Accounts read nothing: a data logger or a gateway only
// publishes, and alerts, which name chains rather than shippers, would
// tell any shipper about every chain.
func (a *brokerAuth) allowed(user, prefix, topic string, write bool) bool {
	if user == a.internalUser {
		return true
	}
	acct, ok := a.account(user)
	if !ok {
		return false
	}
	if !write {
		return false
	}
	shipper, err := ShipperFromTopic(prefix, topic)
	return err == nil && acct.MayPublishFor(shipper)
}
