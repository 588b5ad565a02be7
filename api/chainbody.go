package api

import (
	"encoding/json"
	"sync"

	"github.com/coid-project/coid/custody"
)

// maxChainBodies bounds how many chains' encoded bodies chainBodies
// keeps, maxChainBodyBytes the bytes they take together, and maxChainBody
// the size of one it keeps (a longer chain is encoded per request, as
// before). A 30-record chain encodes to about 30 KB.
const (
	maxChainBodies    = 1024
	maxChainBodyBytes = 32 << 20
	maxChainBody      = 256 << 10
)

// chainBodies keeps the JSON encoding of the chains GET /chains/{coi}
// answered, one per chain. The service hands out a folded chain that it
// shares with its cache and never changes; a chain that grows is folded
// into a new value. So an encoding made from a given *custody.Chain stays
// right for as long as the service hands out that same pointer, and a
// chain read costs a map lookup instead of encoding every record again
// (which was most of the route's time: each record's MarshalJSON and
// encoding/json's compaction of its output).
type chainBodies struct {
	mu    sync.Mutex
	m     map[custody.COI]chainBody
	bytes int // the bodies' length in m
}

type chainBody struct {
	chain *custody.Chain
	body  []byte
}

// encode returns ch encoded as c.JSON would (a trailing newline
// included), from the kept encoding when ch is the value it was made
// from. The returned slice must not be modified.
func (cb *chainBodies) encode(ch *custody.Chain) ([]byte, error) {
	cb.mu.Lock()
	kept, ok := cb.m[ch.COI]
	cb.mu.Unlock()
	if ok && kept.chain == ch {
		return kept.body, nil
	}
	body, err := json.Marshal(ch)
	if err != nil {
		return nil, err
	}
	body = append(body, '\n')
	if len(body) > maxChainBody {
		return body, nil
	}
	cb.mu.Lock()
	if cb.m == nil || len(cb.m) >= maxChainBodies || cb.bytes+len(body) > maxChainBodyBytes {
		cb.m, cb.bytes = make(map[custody.COI]chainBody), 0
	}
	cb.bytes += len(body) - len(cb.m[ch.COI].body)
	cb.m[ch.COI] = chainBody{ch, body}
	cb.mu.Unlock()
	return body, nil
}
