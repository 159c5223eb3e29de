package admin

import "github.com/labstack/echo/v4"

// opsRoutes registers what operators read (adminops replaces this file).
func (s *Server) opsRoutes(g *echo.Group) {}
