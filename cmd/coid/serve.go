package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/coid-project/coid/api"
	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/passwd"
)

func runServe(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	var s settings
	fs := newFlags("serve", env, stderr, &s)
	fs.StringVar(&s.http, "http", or(getenv(env, "COID_HTTP"), "127.0.0.1:8080"), "HTTP listen address (COID_HTTP)")
	fs.StringVar(&s.fin, "fin", or(getenv(env, "COID_FIN"), "A9999"), "issuing facility's ISBT 128 FIN for new COI IDs (COID_FIN)")
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := newLogger(stderr, s.logLevel)
	if err != nil {
		return err
	}
	if !custody.ValidFIN(s.fin) {
		return usagef("serve: --fin %q is not an ISBT 128 facility identification number (a letter other than O, then 4 digits, e.g. A9999)", s.fin)
	}
	store, err := boltstore.Open(s.data, boltstore.Options{})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("closing store", "err", err)
		}
		log.Info("store closed")
	}()
	svc, err := custody.NewService(custody.Config{Store: store, Hasher: passwd.Default(), Logger: log, Now: time.Now,
		FIN: s.fin, Profiles: slices.Sorted(maps.Keys(custody.BuiltinProfiles()))})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	srv, err := api.New(api.Config{Service: svc, Logger: log, Version: version})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	ln, err := net.Listen("tcp", s.http)
	if err != nil {
		return fmt.Errorf("serve: listen on %s: %w", s.http, err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		IdleTimeout: 120 * time.Second, ErrorLog: nil}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("coid serving", "http", ln.Addr().String(), "data", s.data, "fin", s.fin, "version", version)
	fmt.Fprintf(stdout, "coid: serving HTTP on http://%s\n", ln.Addr())
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("http shutdown", "err", err)
	}
	return nil
}
