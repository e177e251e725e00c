package hwinfo

import (
	"strconv"
	"strings"
)

// Fact is one property of an IOMMU that matters to device passthrough,
// named as a user asks about it (stages, ATS, PRI, PASID bits, ...), with
// its value in words and the register field it was read from. Facts are
// the same few questions across vendors, so probe and list can answer
// them by name whatever the IOMMU; the register decoders above keep the
// spec's names.
type Fact struct {
	Name  string // "stages", "ATS", "PASID", ...
	Value string // "S1+S2", "yes", "16-bit", ...
	From  string // "IDR0.S1P,S2P", "ecap DT", ...
}

// FactsText joins facts as "name value" pairs, for one line of output.
func FactsText(facts []Fact) string {
	var b strings.Builder
	for i, f := range facts {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(f.Name + " " + f.Value)
	}
	return b.String()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func bitsText(n int) string { return strconv.Itoa(n) + "-bit" }

// Facts answers the passthrough questions for an SMMUv3 from its ID
// registers. The kernel hands them over unmasked (see SMMUv3), so a fact
// is what the hardware offers, not necessarily what the driver enabled.
func (s SMMUv3) Facts() []Fact {
	i0, i1, i3, i5 := s.IDR0(), s.IDR1(), s.IDR3(), s.IDR5()
	var stages []string
	if i0.S1P() {
		stages = append(stages, "S1")
	}
	if i0.S2P() {
		stages = append(stages, "S2")
	}
	st := strings.Join(stages, "+")
	if st == "" {
		st = "none"
	}
	asid, vmid := 8, 8
	if i0.ASID16() {
		asid = 16
	}
	if i0.VMID16() {
		vmid = 16
	}
	var gran []string
	for _, g := range []struct {
		on   bool
		name string
	}{{i5.GRAN4K(), "4K"}, {i5.GRAN16K(), "16K"}, {i5.GRAN64K(), "64K"}} {
		if g.on {
			gran = append(gran, g.name)
		}
	}
	granules := strings.Join(gran, ",")
	if granules == "" {
		granules = "none"
	}
	return []Fact{
		{"version", s.AIDR.String(), "AIDR"},
		{"stages", st, "IDR0.S1P,S2P"},
		{"nesting", yesNo(i0.S1P() && i0.S2P()), "IDR0.S1P and S2P"},
		{"TTF", i0.TTF().String(), "IDR0.TTF"},
		{"ATS", yesNo(i0.ATS()), "IDR0.ATS"},
		{"PRI", yesNo(i0.PRI()), "IDR0.PRI"},
		{"BTM", yesNo(i0.BTM()), "IDR0.BTM"},
		{"HTTU", i0.HTTU().String(), "IDR0.HTTU"},
		{"COHACC", yesNo(i0.COHACC()), "IDR0.COHACC"},
		{"stall", i0.StallModel().String(), "IDR0.STALL_MODEL"},
		{"ASID", bitsText(asid), "IDR0.ASID16"},
		{"VMID", bitsText(vmid), "IDR0.VMID16"},
		{"SID", bitsText(i1.SIDSIZE()), "IDR1.SIDSIZE"},
		{"SSID", bitsText(i1.SSIDSIZE()), "IDR1.SSIDSIZE"},
		{"OAS", bitsName(i5.OAS()), "IDR5.OAS"},
		{"VAX", bitsName(i5.VAX()), "IDR5.VAX"},
		{"granules", granules, "IDR5.GRAN4K,16K,64K"},
		{"range invalidation", yesNo(i3.RIL()), "IDR3.RIL"},
		{"implementer", s.IIDR.String(), "IIDR"},
	}
}

// Facts answers the passthrough questions for a VT-d unit from its
// capability registers.
func (v VTD) Facts() []Fact {
	c, e := v.Cap, v.ECap
	sp := joinSizes(c.SLLPS(), ",")
	if sp == "" {
		sp = "none"
	}
	pasid := "no"
	if e.PASID() {
		pasid = bitsText(e.PSS())
	}
	var stages []string
	if e.FLTS() {
		stages = append(stages, "first")
	}
	if e.SLTS() || !e.SMTS() { // legacy mode translates with second-stage tables only
		stages = append(stages, "second")
	}
	if len(stages) == 0 {
		stages = append(stages, "none")
	}
	return []Fact{
		{"address width", bitsText(c.MGAW()), "cap MGAW"},
		{"domains", strconv.Itoa(c.Domains()), "cap ND"},
		{"superpages", sp, "cap SLLPS"},
		{"scalable mode", yesNo(e.SMTS()), "ecap SMTS"},
		{"stages", strings.Join(stages, "+"), "ecap FLTS,SLTS,SMTS"},
		{"nesting", yesNo(e.NEST()), "ecap NEST"},
		{"dirty tracking", yesNo(e.SLADS()), "ecap SLADS"},
		{"ATS", yesNo(e.DT()), "ecap DT"},
		{"PRI", yesNo(e.PRS()), "ecap PRS"},
		{"PASID", pasid, "ecap PASID,PSS"},
		{"interrupt remapping", yesNo(e.IR()), "ecap IR"},
		{"posted interrupts", yesNo(c.PI()), "cap PI"},
		{"snoop control", yesNo(e.SC()), "ecap SC"},
		{"coherent walks", yesNo(e.C()), "ecap C"},
		{"caching mode", yesNo(c.CM()), "cap CM"},
	}
}

// Facts answers the passthrough questions for an AMD-Vi unit from its
// capability header and EFRs. The IOMMU's ATS support is the capability
// header's IotlbSup, which IOMMU_GET_HW_INFO does not carry: from there
// (Cap 0) ATS reads "unknown".
func (a AMDVi) Facts() []Fact {
	e := a.EFR
	host := "disabled (HATS reserved)"
	if n := e.HATS(); n != 0 {
		host = strconv.Itoa(n) + "-level"
	}
	pasid, guest := "no", "no"
	if e.GT() {
		pasid = bitsText(e.PASmax())
		guest = levelsName(e.GATS())
	}
	ats := yesNo(a.Cap.IOTLB())
	if a.Cap == 0 {
		ats = "unknown"
	}
	return []Fact{
		{"host page tables", host, "EFR HATS"},
		{"guest translation", guest, "EFR GT,GATS"},
		{"PASID", pasid, "EFR GT,PASmax"},
		// The kernel's is_nest_parent_supported and its HD check.
		{"nesting", yesNo(e.GT() && e.GIOSup() && a.EFR2.GCR3TRPMode()), "EFR GT, GIOSUP and EFR2 GCR3TRPMODE"},
		{"dirty tracking", yesNo(e.HDSup() && e.HATS() != 0), "EFR HDSUP (and HATS not reserved)"},
		{"ATS", ats, "cap IOTLB"},
		{"PRI", yesNo(e.PPR()), "EFR PPR"},
		{"x2APIC", yesNo(e.X2APIC()), "EFR X2APIC"},
		{"posted interrupts", yesNo(e.GA()), "EFR GA"},
		{"not-present caching", yesNo(a.Cap.NPCache()), "cap NPCACHE"},
		{"SNP", yesNo(e.SNP()), "EFR SNP"},
	}
}
