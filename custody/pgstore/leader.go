package pgstore

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/jackc/pgx/v5"
)

// Leadership: a job that must run on one instance at a time (the
// excursion monitor) is led by the instance holding a session-level
// advisory lock on a connection of its own. PostgreSQL releases the lock
// when that connection ends, however it ends (the process killed, the
// machine gone, the backend terminated), so another instance, polling
// every LeaderPoll, takes over within seconds. The leader pings its
// connection every LeaderPoll too, each ping given LeaderPoll to answer:
// once the connection is broken it may no longer hold the lock, and its
// job is stopped. So an old leader whose connection broke has stopped its
// job within two LeaderPolls of losing the lock, and a new leader waits
// that long (the settle) after taking the lock before it starts the job:
// the two never run it together (short of a process frozen for longer).
//
// A process frozen longer than the settle (or whose lock connection broke
// while it could not run) may still append as the old leader when it
// wakes. So each leadership taken increments its job's epoch in the
// database (table leader_epochs) and carries it as a fence
// (custody.WithFence) in the context Lead returns; the appends made under
// that context carry the fence (custody.Draft.Fence), and the append
// transaction refuses them with custody.ErrFenced once the epoch has
// grown, reading it under a share lock, so that no append of an old epoch
// commits after a newer leadership was taken. A refusal also ends the old
// leadership's context here: its job stops.
//
// Advisory locks belong to the database, not to a schema: the lock's key
// is the job's name and the schema the store uses, so stores in different
// schemas of one database do not exclude each other.

// DefaultLeaderPoll is how often an instance that does not lead tries to
// take the leadership, and the leader checks its hold, when
// Options.LeaderPoll is zero.
const DefaultLeaderPoll = 2 * time.Second

// LeaderSettle is how long a new leader waits after taking the lock
// before its job starts, for leaders that poll every poll: two polls, the
// longest an old leader takes to notice it lost the lock.
func LeaderSettle(poll time.Duration) time.Duration { return 2 * poll }

const tryLockSQL = `SELECT pg_try_advisory_lock(hashtext('coid-leader:' || $1), hashtext(current_schema()))`

// Lead blocks until this instance leads the job named name, or ctx ends;
// see custody.Leadership. It uses a connection of its own, outside the
// pool, for as long as it leads or waits to.
func (s *Store) Lead(ctx context.Context, name string) (context.Context, func(), error) {
	for {
		held, release, err := s.tryLead(ctx, name)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("leadership: cannot reach the database to take the lead; trying again", "job", name, "err", err)
		}
		if held != nil {
			return held, release, nil
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-s.after(s.leaderPoll):
		}
	}
}

// tryLead connects and tries the lock once: held is nil when another
// instance leads (or the database could not be reached, err).
func (s *Store) tryLead(ctx context.Context, name string) (held context.Context, release func(), err error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, nil, err
	}
	var got bool
	if err := conn.QueryRow(ctx, tryLockSQL, name).Scan(&got); err != nil || !got {
		closeConn(conn)
		if err != nil {
			return nil, nil, fmt.Errorf("leadership %s: %w", name, err)
		}
		return nil, nil, nil
	}
	// The new epoch fences off every older leader at once, before the
	// settle.
	var epoch int64
	if err := conn.QueryRow(ctx, `INSERT INTO leader_epochs (job, epoch) VALUES ($1, 1)
		ON CONFLICT (job) DO UPDATE SET epoch = leader_epochs.epoch + 1 RETURNING epoch`, name).Scan(&epoch); err != nil {
		closeConn(conn) // releases the lock
		return nil, nil, fmt.Errorf("leadership %s: new epoch: %w", name, err)
	}
	// The settle: a previous leader that lost its connection has stopped
	// by its end.
	select {
	case <-ctx.Done():
		closeConn(conn) // releases the lock
		return nil, nil, ctx.Err()
	case <-s.after(LeaderSettle(s.leaderPoll)):
	}
	s.log.Info("leadership taken", "job", name, "epoch", epoch)
	fence := custody.Fence{Job: name, Epoch: epoch}
	held, cancel := context.WithCancel(custody.WithFence(ctx, fence))
	s.holds.add(fence, cancel)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer cancel()
		s.watchLead(held, conn, name)
	}()
	release = func() {
		cancel()
		<-done
		s.holds.remove(fence)
	}
	return held, release, nil
}

// leaderHolds are the leaderships this Store holds, by fence, with the
// cancel of each one's context: a refused append (custody.ErrFenced)
// ends its leadership here.
type leaderHolds struct {
	mu    sync.Mutex
	holds map[custody.Fence]context.CancelFunc
}

func (h *leaderHolds) add(f custody.Fence, cancel context.CancelFunc) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.holds == nil {
		h.holds = map[custody.Fence]context.CancelFunc{}
	}
	h.holds[f] = cancel
}

func (h *leaderHolds) remove(f custody.Fence) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.holds, f)
}

// superseded ends leadership f, if this Store holds it: a newer one
// was taken.
func (h *leaderHolds) superseded(f custody.Fence) {
	h.mu.Lock()
	cancel := h.holds[f]
	h.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// fencing reports whether a draft of the batch was made under a
// leadership: the batch then reads the epochs (the slow path).
func (b *batchTx) fencing() bool {
	for _, r := range b.reqs {
		if r.d.Fence != nil {
			return true
		}
	}
	return false
}

// queueFenceReads queues, onto the read batch of an append transaction,
// the epochs of the jobs the batch's drafts were made under, under a share
// lock: a leadership taken meanwhile waits for the append to commit. It
// returns the epochs as they will be once the batch is sent.
func (b *batchTx) queueFenceReads(read *pgx.Batch) map[string]int64 {
	var jobs []string
	for _, r := range b.reqs {
		if r.d.Fence != nil && !slices.Contains(jobs, r.d.Fence.Job) {
			jobs = append(jobs, r.d.Fence.Job)
		}
	}
	epochs := map[string]int64{}
	read.Queue(`SELECT job, epoch FROM leader_epochs WHERE job = ANY($1) FOR SHARE`, jobs).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var job string
			var epoch int64
			if err := rows.Scan(&job, &epoch); err != nil {
				return err
			}
			epochs[job] = epoch
		}
		return rows.Err()
	})
	return epochs
}

// refuseFenced refuses, in out, the drafts made under a leadership older
// than its job's epoch, and ends those leaderships here.
func (b *batchTx) refuseFenced(epochs map[string]int64, out []custody.Outcome[custody.Record]) {
	for i, r := range b.reqs {
		f := r.d.Fence
		if f == nil || epochs[f.Job] <= f.Epoch {
			continue
		}
		out[i].Err = fmt.Errorf("append to %s: this instance's leadership of %s (epoch %d) was superseded (epoch %d): %w",
			r.d.Record.Chain, f.Job, f.Epoch, epochs[f.Job], custody.ErrFenced)
		b.s.log.Warn("leadership superseded: an append under it was refused; its job stops here", "job", f.Job, "epoch", f.Epoch, "newer", epochs[f.Job])
		b.s.holds.superseded(*f)
	}
}

// watchLead pings the lock's connection until held ends, then gives the
// lock up and closes the connection. A failed ping ends the leadership:
// the connection, and with it the lock, may be gone.
func (s *Store) watchLead(held context.Context, conn *pgx.Conn, name string) {
	defer closeConn(conn)
	for {
		select {
		case <-held.Done():
			// Closing the connection releases the lock; unlocking first
			// says so at once, before the close is seen.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtext('coid-leader:' || $1), hashtext(current_schema()))`, name); err != nil {
				s.log.Warn("leadership: unlock failed; closing the connection releases it", "job", name, "err", err)
			}
			s.log.Info("leadership given up", "job", name)
			return
		case <-s.after(s.leaderPoll):
		}
		pctx, cancel := context.WithTimeout(held, s.leaderPoll)
		err := conn.Ping(pctx)
		cancel()
		if err != nil {
			if held.Err() != nil {
				continue // given up while pinging
			}
			s.log.Error("leadership lost: the lock's database connection broke", "job", name, "err", err)
			return
		}
	}
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}

var _ custody.Leadership = (*Store)(nil)
