# safety.rego: content that puts people at risk or breaks the law, the
# categories England's filtering guidance (UK Safer Internet Centre
# "appropriate filtering", KCSIE) asks a provider to cover.
#
# illegal (IWF child-abuse list, police-assessed terrorist content), extremism
# and selfharm are critical and always alert: each is a safeguarding concern
# about a person, not just a blocked page. malware and phishing protect the
# network and the learner's accounts; they are blocked for everyone but do
# not page the safeguarding team (the block is still recorded). None of these
# five can be relaxed for any group, whatever data.yaml says.
#
# hacking, drugs and violence are blocked and alert, but a group may relax
# them (staff reach security resources with an allow-and-alert record).
package aupguard

# Categories no group can relax: relaxed() (groups.rego) ignores them, and
# datacheck.rego reports a data.yaml that tries.
never_relaxed := {"illegal", "extremism", "selfharm", "malware", "phishing"}

# AUP: learners and employers must not engage in illegal activity. Lists such
# as the IWF's name content that is illegal to view at all.
category_rules["illegal"] := {
	"action": "block",
	"category": "illegal",
	"rule": "illegal",
	"severity": "critical",
	"alert": true,
	"reason": "This site is on a list of illegal content and cannot be reached from the provider's network (Acceptable Use Policy: illegal activity).",
}

# AUP: no activity promoting terrorism (Prevent duty; police-assessed
# terrorist content lists).
category_rules["extremism"] := {
	"action": "block",
	"category": "extremism",
	"rule": "extremism",
	"severity": "critical",
	"alert": true,
	"reason": "This site promotes extremism or terrorism and is blocked on the provider's network (Acceptable Use Policy: activity promoting terrorism).",
}

# Safeguarding: a visit to a site promoting self-harm or suicide may mean a
# learner is at risk, so the safeguarding team hears of it at once.
category_rules["selfharm"] := {
	"action": "block",
	"category": "selfharm",
	"rule": "selfharm",
	"severity": "critical",
	"alert": true,
	"reason": "This site is blocked because it promotes self-harm. If you are struggling, please talk to a member of staff or the safeguarding team; you are not in trouble (Online Safety Statement: self-harm).",
}

# AUP: learners and employers must not introduce malware.
category_rules["malware"] := {
	"action": "block",
	"category": "malware",
	"rule": "malware",
	"severity": "high",
	"alert": false,
	"reason": "This site is known to spread malicious software and is blocked to protect you and the network (Acceptable Use Policy: malware).",
}

# Protects learners' and staff accounts from credential theft; also AUP
# (fraud).
category_rules["phishing"] := {
	"action": "block",
	"category": "phishing",
	"rule": "phishing",
	"severity": "high",
	"alert": false,
	"reason": "This site is known to steal passwords or personal details and is blocked to protect you (Acceptable Use Policy: fraud).",
}

# AUP: learners and employers must not monitor or intercept network traffic,
# crack passwords or decode encrypted information.
category_rules["hacking"] := {
	"action": "block",
	"category": "hacking",
	"rule": "hacking",
	"severity": "medium",
	"alert": true,
	"reason": "Hacking and password-cracking tools are not permitted on the provider's network (Acceptable Use Policy: intercepting traffic and cracking passwords).",
}

# Filtering guidance: drugs (substance abuse). AUP: illegal activity.
category_rules["drugs"] := {
	"action": "block",
	"category": "drugs",
	"rule": "drugs",
	"severity": "medium",
	"alert": true,
	"reason": "Sites promoting illegal drugs are not permitted on the provider's network (Acceptable Use Policy: illegal activity).",
}

# Filtering guidance: violence. AUP: offensive material, intimidation.
category_rules["violence"] := {
	"action": "block",
	"category": "violence",
	"rule": "violence",
	"severity": "medium",
	"alert": true,
	"reason": "Sites promoting violence or weapons are not permitted on the provider's network (Acceptable Use Policy: offensive material).",
}
