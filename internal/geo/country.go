package geo

// countryCodes lists every officially assigned ISO 3166-1 alpha-2 code
// (249, as published by the ISO 3166 Maintenance Agency), plus XK for
// Kosovo: user-assigned, but used by MaxMind, the EU and most providers, so
// an administrator may well want to name it in allow_country/deny_country.
const countryCodes = "" +
	"AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ " +
	"BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ " +
	"CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ " +
	"DE DJ DK DM DO DZ " +
	"EC EE EG EH ER ES ET " +
	"FI FJ FK FM FO FR " +
	"GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY " +
	"HK HM HN HR HT HU " +
	"ID IE IL IM IN IO IQ IR IS IT " +
	"JE JM JO JP " +
	"KE KG KH KI KM KN KP KR KW KY KZ " +
	"LA LB LC LI LK LR LS LT LU LV LY " +
	"MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ " +
	"NA NC NE NF NG NI NL NO NP NR NU NZ " +
	"OM " +
	"PA PE PF PG PH PK PL PM PN PR PS PT PW PY " +
	"QA " +
	"RE RO RS RU RW " +
	"SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ " +
	"TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ " +
	"UA UG UM US UY UZ " +
	"VA VC VE VG VI VN VU " +
	"WF WS " +
	"XK " +
	"YE YT " +
	"ZA ZM ZW"

// assigned is countryCodes as a 26×26 table, so that ValidCountry neither
// allocates nor hashes.
var assigned = func() (t [26 * 26]bool) {
	for i := 0; i+1 < len(countryCodes); i += 3 {
		t[int(countryCodes[i]-'A')*26+int(countryCodes[i+1]-'A')] = true
	}
	return t
}()

// ValidCountry reports whether code is an assigned ISO 3166-1 alpha-2
// country code (or XK), ignoring case. Lookup returns codes upper-case, so
// callers should store configured codes with strings.ToUpper.
func ValidCountry(code string) bool {
	if len(code) != 2 {
		return false
	}
	a, b := code[0]|0x20, code[1]|0x20 // ASCII lower-case
	if a < 'a' || a > 'z' || b < 'a' || b > 'z' {
		return false
	}
	return assigned[int(a-'a')*26+int(b-'a')]
}
