package boltstore

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// mapFixedNoReplace is Linux's MAP_FIXED_NOREPLACE: map at the address
// given, or fail (EEXIST) when something is mapped there already.
const mapFixedNoReplace = 0x100000

// TestCheckFileValueLengthIntoMappedMemory: a record's value length on its
// leaf page points past the end of the file, hundreds of MiB on, to an
// address where the process has readable memory mapped. Whether it has
// depends on the address space's layout (the Go runtime's and the race
// detector's mappings), and the old check, which read the value's last
// byte and counted on a fault, passed such a file as sound now and then.
// Here a readable page is mapped there on purpose, every time: CheckFile
// must name bucket "log", entry 617.
func TestCheckFileValueLengthIntoMappedMemory(t *testing.T) {
	dir := damageStore(t)
	path := filepath.Join(dir, FileName)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Every copy of the element (the live one, stale ones in free pages).
	elems := leafElems(t, b, "handoff 617 checked")
	st, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	data := st.db.Info().Data // bbolt maps the file shared: a write to it shows here
	ps := uintptr(os.Getpagesize())
	valueAt := func(e int) uintptr {
		pos, ks := uintptr(binary.LittleEndian.Uint32(b[e+4:])), uintptr(binary.LittleEndian.Uint32(b[e+8:]))
		return data + uintptr(e) + pos + ks
	}
	// A readable page of our own from 256 MiB past the first copy on,
	// where nothing is mapped yet.
	page := uintptr(0)
	for off := uintptr(256 << 20); off < 3<<30 && page == 0; off += 1 << 20 {
		addr := (valueAt(elems[0]) + off) &^ (ps - 1)
		got, _, errno := syscall.Syscall6(syscall.SYS_MMAP, addr, ps, syscall.PROT_READ,
			syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS|mapFixedNoReplace, ^uintptr(0), 0)
		switch {
		case errno == syscall.EEXIST:
		case errno != 0:
			t.Fatalf("mmap at %#x: %v", addr, errno)
		case got != addr: // a kernel older than 4.17 takes the address as a hint
			syscall.Syscall(syscall.SYS_MUNMAP, got, ps, 0)
			t.Fatalf("mmap at %#x mapped %#x (no MAP_FIXED_NOREPLACE)", addr, got)
		default:
			page = got
		}
	}
	if page == 0 {
		t.Fatal("no free address to map a page at")
	}
	defer syscall.Syscall(syscall.SYS_MUNMAP, page, ps, 0)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range elems {
		// The value's last byte in the middle of the page.
		if _, err := f.WriteAt(binary.LittleEndian.AppendUint32(nil, uint32(page+ps/2-valueAt(e))), int64(e+12)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	var fd *FileDamage
	if err := st.CheckFile(context.Background()); !errors.As(err, &fd) || fd.Bucket != "log" || fd.Key != "617" {
		t.Fatalf("CheckFile: %v", err)
	}
}
