package custody

// CheckNoPHI lets the external tests (which may import custody/phitext)
// call the PHI guard.
func CheckNoPHI(step Step, data []byte, p *PHI, f TextFolder) error {
	return checkNoPHI(step, data, p, f)
}
