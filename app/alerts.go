package app

import (
	"errors"
	"fmt"

	"github.com/aupguard/aupguard/admin"
	"github.com/aupguard/aupguard/config"
	"github.com/aupguard/aupguard/events"
	"github.com/aupguard/aupguard/staff"
)

// eventsConfig is the events section with what the file cannot say: the
// policy time zone, for the times in alert e-mails and the digest's hour.
func eventsConfig(cfg *config.Config) (events.Config, error) {
	ec := cfg.Events
	loc, err := cfg.Location()
	if err != nil {
		return ec, fmt.Errorf("policy.timezone: %w", err)
	}
	ec.Alerts.Email.Location = loc
	return ec, nil
}

// newAdminAuth builds the admin API's authentication, nil only when
// admin.auth.disabled says so. A listener with no credential yet starts
// (so `aupguard serve` works out of the box) with its API locked, and
// says how to unlock it.
func (s *Server) newAdminAuth() (*admin.Auth, error) {
	if s.cfg.Admin.Auth.Disabled {
		s.log.Warn("admin API authentication is disabled (admin.auth.disabled): anyone who reaches the admin listener can read it")
		return nil, nil
	}
	a, err := admin.NewAuth(s.cfg.Admin.Auth, staff.File(s.cfg.DataDir), s.log.With("component", "admin"))
	if err != nil {
		return nil, err
	}
	if a.Locked() {
		s.log.Warn("admin API locked: /api/* answers 401 until admin.auth.token_file is set or an admin exists (aupguard users add --role admin NAME)")
	}
	return a, nil
}

// reloadCredentials re-reads the credential files of the event pipeline
// (SMTP relay password) and of the admin API (token file) on SIGHUP.
func (s *Server) reloadCredentials() error {
	var errs []error
	if err := s.Events.Reload(); err != nil {
		errs = append(errs, fmt.Errorf("events: %w", err))
	}
	if s.adminAuth != nil {
		if err := s.adminAuth.Reload(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
