// dex-testidp: a tiny wrapper that runs a real Dex OpenID provider (library
// github.com/dexidp/dex, v2.45.1) with in-memory storage, static clients and
// static password users that carry groups. For tests only.
//
//	dex-testidp -config dex-config.yaml
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/dexidp/dex/server"
	"github.com/dexidp/dex/server/signer"
	"github.com/dexidp/dex/storage"
	"github.com/dexidp/dex/storage/memory"
	"github.com/ghodss/yaml"
	"golang.org/x/crypto/bcrypt"
)

type user struct {
	Email    string   `json:"email"`
	Password string   `json:"password"` // plaintext, hashed at start-up (test use only)
	Hash     string   `json:"hash"`     // or a bcrypt hash (cost 10..16)
	Username string   `json:"username"`
	UserID   string   `json:"userID"`
	Groups   []string `json:"groups"`
}

type config struct {
	Issuer             string           `json:"issuer"`
	Listen             string           `json:"listen"`
	SkipApprovalScreen bool             `json:"skipApprovalScreen"`
	IDTokenTTL         string           `json:"idTokenTTL"`
	Clients            []storage.Client `json:"staticClients"`
	Users              []user           `json:"staticPasswords"`
}

func main() {
	path := flag.String("config", "dex-config.yaml", "config file (YAML)")
	flag.Parse()
	if err := run(*path); err != nil {
		fmt.Fprintln(os.Stderr, "dex-testidp:", err)
		os.Exit(1)
	}
}

func run(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var c config
	if err := yaml.Unmarshal(raw, &c); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	passwords := make([]storage.Password, 0, len(c.Users))
	for _, u := range c.Users {
		hash := []byte(u.Hash)
		if u.Password != "" {
			if hash, err = bcrypt.GenerateFromPassword([]byte(u.Password), bcrypt.DefaultCost); err != nil {
				return err
			}
		}
		if u.UserID == "" {
			u.UserID = u.Email
		}
		passwords = append(passwords, storage.Password{
			Email: u.Email, Hash: hash, Username: u.Username, UserID: u.UserID, Groups: u.Groups,
		})
	}

	var s storage.Storage = memory.New(logger)
	s = storage.WithStaticClients(s, c.Clients)
	s = storage.WithStaticPasswords(s, passwords, logger)
	// The "local" connector is Dex's password DB (enablePasswordDB: true in dex's own config).
	s = storage.WithStaticConnectors(s, []storage.Connector{
		{ID: server.LocalConnector, Name: "Email", Type: server.LocalConnector},
	})

	idTTL := 24 * time.Hour
	if c.IDTokenTTL != "" {
		if idTTL, err = time.ParseDuration(c.IDTokenTTL); err != nil {
			return err
		}
	}
	now := func() time.Time { return time.Now().UTC() }
	sc := signer.LocalConfig{KeysRotationPeriod: "6h"}
	sig, err := sc.Open(ctx, s, idTTL, now, logger)
	if err != nil {
		return fmt.Errorf("signer: %w", err)
	}

	// Must be set: a nil policy makes the refresh_token grant panic (v2.45.1).
	// Args as cmd/dex passes them: disableRotation=false, no idle/absolute expiry.
	rtp, err := server.NewRefreshTokenPolicy(logger, false, "", "", "")
	if err != nil {
		return err
	}

	srv, err := server.NewServer(ctx, server.Config{
		Issuer:             c.Issuer,
		Storage:            s,
		SkipApprovalScreen: c.SkipApprovalScreen,
		IDTokensValidFor:   idTTL,
		Signer:             sig,
		Logger:             logger,
		Now:                now,
		RefreshTokenPolicy: rtp,
	})
	if err != nil {
		return fmt.Errorf("dex server: %w", err)
	}

	hs := &http.Server{Addr: c.Listen, Handler: srv}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	logger.Info("dex-testidp listening", "addr", c.Listen, "issuer", c.Issuer)
	if err := hs.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		return err
	}
	return nil
}
