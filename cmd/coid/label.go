package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
	_ "time/tzdata" // --zone works without the host's zoneinfo

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/passwd"
	"github.com/coid-project/coid/labels"
)

const labelUsage = `usage: coid label [--data DIR] --user ID [--format pdf|png|zpl] [--symbology qr|datamatrix]
                  [--zone ZONE] [--dpi N] [--width-mm MM] [--height-mm MM] [--size PX] [-o FILE] BAG_ID_OR_COI

Prints bag labels offline from the data directory, byte for byte as the API
does with the same options. The argument is a bag ID (CHA999926000001-FP-01),
a scanned label payload (C1:...), or a COI (with or without its check
character), which prints every bag of the chain, one label per page (pdf) or
one format per label (zpl). Output goes to stdout unless -o names a file
(created 0600: labels show the patient's name and date of birth).

--user names the person printing; the label rules apply to that user's role
(coordinator, nurse, manufacturing or qa) and each label is logged on stderr
with the user, never the patient. Like the other offline commands, the
command trusts whoever can open the data directory.

`

// runLabel is "coid label".
func runLabel(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	var s settings
	var userID, format, symbology, zone, out string
	var o labels.Options
	o.Stock = labels.DefaultStock
	fs := newFlags("label", env, stderr, &s)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), labelUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&userID, "user", getenv(env, "COID_USER"), "ID of the user printing (COID_USER)")
	fs.StringVar(&format, "format", "pdf", "output format: pdf, png (one bag's code alone) or zpl")
	fs.StringVar(&symbology, "symbology", "qr", "2-D code: qr or datamatrix")
	fs.StringVar(&zone, "zone", or(getenv(env, "COID_LABEL_ZONE"), "UTC"), "IANA time zone printed above UTC (COID_LABEL_ZONE)")
	fs.IntVar(&o.Stock.DPI, "dpi", o.Stock.DPI, "printer resolution, dots per inch (pdf, zpl)")
	fs.Float64Var(&o.Stock.WidthMM, "width-mm", o.Stock.WidthMM, "label stock width in mm (pdf, zpl)")
	fs.Float64Var(&o.Stock.HeightMM, "height-mm", o.Stock.HeightMM, "label stock height in mm (pdf, zpl)")
	fs.IntVar(&o.PNGSize, "size", labels.DefaultPNGSize, "PNG side in pixels (png)")
	fs.StringVar(&out, "o", "", "write to FILE instead of stdout")

	// Flags may come before or after the bag ID or COI.
	var target []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return usagef("label: help requested")
			}
			return usagef("label: %v", err)
		}
		if fs.NArg() == 0 {
			break
		}
		target = append(target, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(target) != 1 {
		fmt.Fprint(stderr, labelUsage)
		return usagef("label: give exactly one bag ID or COI, got %d", len(target))
	}
	if userID == "" {
		return usagef("label: --user (or COID_USER) must name the user printing the labels")
	}
	f, err := labels.ParseFormat(format)
	if err != nil {
		return usagef("label: --format %q: want pdf, png or zpl", format)
	}
	if o.Symbology, err = labels.ParseSymbology(symbology); err != nil {
		return usagef("label: --symbology %q: want qr or datamatrix", symbology)
	}
	if zone == "" || strings.EqualFold(zone, "Local") {
		return usagef("label: --zone must be an IANA time zone name such as Europe/Berlin")
	}
	if o.Zone, err = time.LoadLocation(zone); err != nil {
		return usagef("label: --zone %q is not a known IANA time zone (e.g. Europe/Berlin)", zone)
	}
	if f == labels.FormatPNG {
		o.Stock = labels.Stock{} // not used
	}
	if err := o.Validate(); err != nil {
		return fmt.Errorf("label: %w", err)
	}
	code, err := custody.ParseCode(target[0])
	if err != nil {
		return fmt.Errorf("label: %q is not a bag ID or COI: %w", target[0], err)
	}
	if code.Bag == nil && f == labels.FormatPNG {
		return usagef("label: a PNG is one bag's code; give a bag ID, or --format pdf or zpl for every bag of %s", code.COI.Display())
	}

	log, err := newLogger(stderr, s.logLevel)
	if err != nil {
		return err
	}
	store, err := boltstore.Open(s.data, boltstore.Options{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("label: %w", err)
	}
	defer store.Close()
	svc, err := custody.NewService(custody.Config{Store: store, Hasher: passwd.Default(), Logger: log, Now: time.Now, FIN: "A9999"})
	if err != nil {
		return fmt.Errorf("label: %w", err)
	}
	u, err := store.User(ctx, userID)
	if err != nil {
		return fmt.Errorf("label: user %s: %w", userID, err)
	}
	if u.Disabled {
		return fmt.Errorf("label: user %s is disabled: %w", userID, custody.ErrForbidden)
	}
	var contents []custody.LabelContent
	if code.Bag != nil {
		lc, err := svc.LabelContent(ctx, u, *code.Bag)
		if err != nil {
			return err
		}
		contents = append(contents, lc)
	} else if contents, err = svc.ChainLabelContents(ctx, u, code.COI); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := labels.Render(&buf, f, contents, o); err != nil {
		return fmt.Errorf("label: %w", err)
	}
	if out == "" {
		_, err := buf.WriteTo(stdout)
		return err
	}
	return writeFile(out, buf.Bytes())
}

// writeFile writes b to path through a temporary file in the same
// directory, so a reader never sees half a label, readable by its owner
// only.
func writeFile(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("label: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("label: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("label: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("label: %w", err)
	}
	return nil
}
