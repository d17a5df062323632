// Package policies holds aupguard's built-in Rego policy set: one file per
// concern of the Acceptable Use Policy, the data those rules read
// (data.yaml: groups, social-media platforms and approvals, the schedule),
// and a Rego unit test beside every rule file.
//
// The Go side compiles these files and evaluates the query
// data.aupguard.decision; README.md documents the input and output contract.
package policies

import "embed"

// FS holds every built-in policy file: the .rego modules, their *_test.rego
// unit tests and data.yaml, all at the root of the file system. The rego
// engine compiles from it (tests included, so that a policy whose own tests
// fail is never activated), and an admin's policy directory overlays it file
// by file.
//
//go:embed *.rego *.yaml
var FS embed.FS
