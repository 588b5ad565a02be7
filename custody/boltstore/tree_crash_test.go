package boltstore

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody/storetest"
)

// crashChildEnv, set, makes TestTreeSurvivesAKilledWriter's child: it
// appends to the store in that directory until it is killed.
const crashChildEnv = "COID_TREE_CRASH_DIR"

// TestTreeSurvivesAKilledWriter kills (SIGKILL) a process in the middle of
// appending through the writer, many times: each reopen finds the tree
// holding exactly the records the ledger holds, with the independent
// library's root, and the ledger verifying.
func TestTreeSurvivesAKilledWriter(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		round, _ := strconv.Atoi(os.Getenv(crashChildEnv + "_ROUND"))
		crashChild(dir, round)
		return
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	for round := 0; round < 4; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestTreeSurvivesAKilledWriter$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, fmt.Sprintf("%s_ROUND=%d", crashChildEnv, round))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The child says "appending" once its first records are durable;
		// it is killed after a few more commits, in the middle of others.
		sc := bufio.NewScanner(out)
		lines := 0
		for sc.Scan() && lines < 3+round*2 {
			lines++
		}
		_ = cmd.Process.Kill()
		if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
			t.Fatalf("round %d: the child ended on its own (%v) after %d lines", round, err, lines)
		}
		// As the kill left it (a reader does not complete the tree): the
		// tree holds no record the log does not, and every hash it holds
		// is right, whatever hashes were still waiting.
		r, err := Open(dir, Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.CheckFile(context.Background()); err != nil {
			t.Fatalf("round %d, as killed: %v", round, err)
		}
		size, _ := r.TreeSize(context.Background())
		logHead, _, _ := r.Head(context.Background())
		t.Logf("round %d: killed with %d records, the tree holding %d", round, logHead, size)
		r.Close()
		s := openT(t, dir)
		head, _, _ := s.Head(context.Background())
		if head == 0 {
			t.Fatal("the child wrote nothing")
		}
		if rep := verify(t, s); !rep.OK {
			t.Fatalf("round %d: %+v", round, rep)
		}
		checkTreeMatches(t, s)
		s.Close()
	}
}

func crashChild(dir string, round int) {
	s, err := Open(dir, Options{LockTimeout: 5 * time.Second})
	if err != nil {
		os.Exit(3)
	}
	w := bufio.NewWriter(os.Stdout)
	// Fresh chains per process, 50 records each, written by 64 goroutines
	// through Append so that commits are group commits, large enough to
	// leave their tree hashes waiting (treeLagMin).
	done := make(chan struct{})
	for g := 0; g < 64; g++ {
		go func() {
			for n, i := 0, 0; ; n++ {
				coi := storetest.COI(1 + round*100000 + g + 64*n)
				for k := 0; k < 50; k++ {
					i++
					if _, err := s.Append(context.Background(), storetest.Draft(coi, i, k == 0, uint64(k))); err != nil {
						os.Exit(4)
					}
					if g == 0 && i%5 == 0 {
						done <- struct{}{}
					}
				}
			}
		}()
	}
	for range done {
		w.WriteString("appending\n")
		w.Flush()
	}
}
