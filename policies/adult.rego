# adult.rego: pornography, sites mixing adult and general content, and
# hateful or aggressive material.
package aupguard

# AUP: learners and employers must not view, create, store or distribute
# pornographic, obscene or indecent material. Alerts, because for a minor it
# is a safeguarding matter.
category_rules["adult"] := {
	"action": "block",
	"category": "adult",
	"rule": "adult",
	"severity": "high",
	"alert": true,
	"reason": "Pornographic and sexually explicit material is not permitted on the provider's network (Acceptable Use Policy: pornographic or indecent material).",
}

# AUP: same clause. These sites carry adult material among other content
# (forums, image hosts), so a visit is often innocent: blocked for learners,
# recorded without an alert, and staff may reach them (data.yaml).
category_rules["mixed_adult"] := {
	"action": "block",
	"category": "mixed_adult",
	"rule": "mixed_adult",
	"severity": "low",
	"alert": false,
	"reason": "This site mixes adult material with other content, so it is not available to learners on the provider's network (Acceptable Use Policy: pornographic or indecent material).",
}

# AUP: no hateful, defamatory or offensive material; filtering guidance:
# discrimination. Alerts, because seeking it out can be a radicalisation sign.
category_rules["hate"] := {
	"action": "block",
	"category": "hate",
	"rule": "hate",
	"severity": "high",
	"alert": true,
	"reason": "Hateful, discriminatory or aggressive material is not permitted on the provider's network (Acceptable Use Policy: hateful or offensive material).",
}
