package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// registry is the JSON API of one registry: list and register at
// /{plural}, read and update at /{plural}/{code}, suspend and resume at
// /{plural}/{code}/suspend and /resume. Who may do what is the service's.
type registry[T any] struct {
	plural   string
	validKey func(string) error
	key      func(T) string
	register func(context.Context, custody.User, T, string) (T, error)
	update   func(context.Context, custody.User, string, T, string) (T, error)
	suspend  func(context.Context, custody.User, string, bool, string) (T, error)
	get      func(context.Context, custody.User, string) (T, error)
	list     func(context.Context, custody.User, string, int) ([]T, error)
}

// mountRegistries registers the routes of the four registries on g.
func (s *Server) mountRegistries(g *echo.Group) {
	registry[custody.Organisation]{"organisations", custody.ValidateRegistryCode, func(v custody.Organisation) string { return v.Code },
		s.svc.RegisterOrganisation, s.svc.UpdateOrganisation, s.svc.SuspendOrganisation, s.svc.Organisation, s.svc.Organisations}.mount(g)
	registry[custody.Site]{"sites", custody.ValidateRegistryCode, func(v custody.Site) string { return v.Code },
		s.svc.RegisterSite, s.svc.UpdateSite, s.svc.SuspendSite, s.svc.Site, s.svc.Sites}.mount(g)
	registry[custody.Product]{"products", custody.ValidateRegistryCode, func(v custody.Product) string { return v.Code },
		s.svc.RegisterProduct, s.svc.UpdateProduct, s.svc.SuspendProduct, s.svc.Product, s.svc.Products}.mount(g)
	registry[custody.Shipper]{"shippers", custody.ValidateShipperID, func(v custody.Shipper) string { return v.ID },
		s.svc.RegisterShipper, s.svc.UpdateShipper, s.svc.SuspendShipper, s.svc.Shipper, s.svc.Shippers}.mount(g)
}

func (r registry[T]) mount(g *echo.Group) {
	base := "/" + r.plural
	g.GET(base, r.listHandler)
	g.POST(base, r.registerHandler)
	g.GET(base+"/:code", r.getHandler)
	g.PUT(base+"/:code", r.updateHandler)
	g.POST(base+"/:code/suspend", r.suspendHandler(true))
	g.POST(base+"/:code/resume", r.suspendHandler(false))
}

// code reads the {code} path parameter: a malformed one is ErrInvalid.
func (r registry[T]) code(c echo.Context) (string, error) {
	code := c.Param("code")
	if err := r.validKey(code); err != nil {
		return "", fmt.Errorf("path: %w", err)
	}
	return code, nil
}

func (r registry[T]) listHandler(c echo.Context) error {
	limit, err := pageLimit(c, custody.MaxRegistryPage)
	if err != nil {
		return err
	}
	after := c.QueryParam("after")
	if after != "" {
		if err := r.validKey(after); err != nil {
			return fmt.Errorf("after: %w", err)
		}
	}
	list, err := r.list(c.Request().Context(), user(c), after, limit)
	if err != nil {
		return err
	}
	body := map[string]any{r.plural: list, "count": len(list)}
	if len(list) == limit {
		body["next"] = r.key(list[len(list)-1])
	}
	return c.JSON(http.StatusOK, body)
}

func (r registry[T]) registerHandler(c echo.Context) error {
	v, reason, err := bindEntry[T](c)
	if err != nil {
		return err
	}
	out, err := r.register(c.Request().Context(), user(c), v, reason)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, out)
}

func (r registry[T]) getHandler(c echo.Context) error {
	code, err := r.code(c)
	if err != nil {
		return err
	}
	out, err := r.get(c.Request().Context(), user(c), code)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (r registry[T]) updateHandler(c echo.Context) error {
	code, err := r.code(c)
	if err != nil {
		return err
	}
	v, reason, err := bindEntry[T](c)
	if err != nil {
		return err
	}
	out, err := r.update(c.Request().Context(), user(c), code, v, reason)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (r registry[T]) suspendHandler(suspended bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		code, err := r.code(c)
		if err != nil {
			return err
		}
		var req reasonRequest
		if err := bind(c, &req); err != nil {
			return err
		}
		out, err := r.suspend(c.Request().Context(), user(c), code, suspended, req.Reason)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, out)
	}
}

// bindEntry reads a registry entry and the change's reason from one JSON
// object: the entry's members and "reason", as strictly as bind.
func bindEntry[T any](c echo.Context) (T, string, error) {
	var v T
	var m map[string]json.RawMessage
	if err := bind(c, &m); err != nil {
		return v, "", err
	}
	var reason string
	if raw, ok := m["reason"]; ok {
		if err := json.Unmarshal(raw, &reason); err != nil {
			return v, "", fmt.Errorf(`field "reason" must be a string: %w`, custody.ErrInvalid)
		}
		delete(m, "reason")
	}
	b, err := json.Marshal(m)
	if err != nil {
		return v, "", fmt.Errorf("malformed request: %v: %w", sanitize(err), custody.ErrInvalid)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return v, "", fmt.Errorf("field %q must be %s: %w", te.Field, jsonType(te.Type), custody.ErrInvalid)
		}
		return v, "", fmt.Errorf("malformed request: %v: %w", sanitize(err), custody.ErrInvalid)
	}
	return v, reason, nil
}

// pageLimit reads a list route's limit query parameter: 1 to max, 100
// when absent.
func pageLimit(c echo.Context, max int) (int, error) {
	v := c.QueryParam("limit")
	if v == "" {
		return min(100, max), nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, fmt.Errorf("limit %q must be 1-%d: %w", v, max, custody.ErrInvalid)
	}
	return n, nil
}
