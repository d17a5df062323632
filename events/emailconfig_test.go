package events_test

import (
	"strings"
	"testing"

	"github.com/aupguard/aupguard/config"
)

// Plain SMTP to a relay that is neither loopback nor trusted is refused
// when the configuration is read, with the file, line and key.
func TestEmailPlainSMTPRefusedWithLine(t *testing.T) {
	const doc = `events:
  alerts:
    email:
      smtp: mail.school.example:25
      from: aupguard@school.example
      to: [dsl@school.example]
      starttls: false
`
	_, err := config.Parse("aupguard.yaml", []byte(doc))
	if err == nil {
		t.Fatal("plain SMTP to mail.school.example was accepted")
	}
	want := "aupguard.yaml:7: events.alerts.email.starttls: false (and tls false) would send learners' names and the relay password in clear to mail.school.example"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error:\n%v\nwant it to contain:\n%s", err, want)
	}

	trusted := doc + "      trusted_relays: [mail.school.example]\n"
	if _, err := config.Parse("aupguard.yaml", []byte(trusted)); err != nil {
		t.Errorf("a trusted relay was refused: %v", err)
	}
	loopback := strings.Replace(doc, "mail.school.example:25", "127.0.0.1:25", 1)
	if _, err := config.Parse("aupguard.yaml", []byte(loopback)); err != nil {
		t.Errorf("a loopback relay was refused: %v", err)
	}
}
