package admin

// actionSpecs lists the actions operators can request (adminops replaces this file).
func (s *Server) actionSpecs() []ActionSpec { return nil }
