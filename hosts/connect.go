package hosts

import "context"

// Connect opens the transport for a host: the manager itself for
// `type: local`, an SSH connection (exec sessions + SFTP) for the others.
func Connect(ctx context.Context, def *Def, opts SSHOptions) (Transport, error) {
	if def.Type == Local {
		return NewLocal(def.Name), nil
	}
	t, err := DialSSH(ctx, def, opts)
	if err != nil {
		return nil, err
	}
	return t, nil
}
