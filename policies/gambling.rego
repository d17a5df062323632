# gambling.rego: online gambling sites (betting, casinos, lotteries, poker).
package aupguard

# AUP: learners and employers must not take part in online gambling. It also
# alerts: gambling harm among young people is a safeguarding concern.
category_rules["gambling"] := {
	"action": "block",
	"category": "gambling",
	"rule": "gambling",
	"severity": "medium",
	"alert": true,
	"reason": "Online gambling is not permitted on the provider's network (Acceptable Use Policy: gambling).",
}
