package main

import (
	"flag"

	"github.com/coid-project/coid/custody/epcis"
)

// epcisBaseFlag adds --epcis-base (COID_EPCIS_BASE) to fs: the HTTP URI
// base of the EPCIS export's bag, COI, site, shipper and record
// identifiers. Serve and report take it, so that both export the same
// identifiers.
func epcisBaseFlag(fs *flag.FlagSet, env []string) *string {
	return fs.String("epcis-base", getenv(env, "COID_EPCIS_BASE"),
		"HTTP URI base of EPCIS identifiers, under a domain you own, ending in /, e.g. https://coid.example.org/id/; default "+epcis.DefaultBase+" (COID_EPCIS_BASE)")
}

// checkEPCISBase refuses a --epcis-base that is not an absolute http(s)
// URI ending in /.
func checkEPCISBase(cmd, base string) error {
	if base == "" {
		return nil
	}
	if err := epcis.ValidateBase(base); err != nil {
		return usagef("%s: --epcis-base: %v", cmd, err)
	}
	return nil
}
