package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/sugarme/gotch"
	gnn "github.com/sugarme/gotch/nn"

	"github.com/esvae-go/esvae/checkpoint"
	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/train"
	"github.com/esvae-go/esvae/vae"
)

func newImportCommand(a *app) *cobra.Command {
	var pth, out, kind string
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Convert a PyTorch .pth state_dict of the authors' ESVAE, FSVAE or ANN VAE into an esvae checkpoint",
		Long: `Reads a torch.save state_dict (zip format, torch >= 1.6) of the reference implementation,
infers the kind (fc_mu.* = ANN VAE; posterior.* without sample_layer.* = FSVAE; else ESVAE) and the
architecture (channels, latent length, time steps, k, 32x32 or Large) and the attention modules
(TAID: membrane_output_layer.conv.weight; PFA: PFA.TS_conv.*, PFA.TC_FC.*, PFA.SC_FC.*), ignores ESVAE's unused
prior.* / posterior.* entries, checks every key and shape, and writes a checkpoint that
esvae sample, reconstruct and eval read.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if pth == "" || out == "" {
				return fmt.Errorf("--pth and --out are required")
			}
			if err := nn.LockThread(); err != nil {
				return err
			}
			sd, mc, err := train.ReadReference(pth)
			if err != nil {
				return err
			}
			if kind != "" && kind != mc.KindName() {
				return fmt.Errorf("%s holds a %s state_dict but --kind %s was given", pth, mc.KindName(), kind)
			}
			m, err := vae.NewNet(gnn.NewVarStore(gotch.CPU), mc, gotch.Float)
			if err != nil {
				return err
			}
			ignored, err := m.LoadStateDict(sd)
			if err != nil {
				return fmt.Errorf("%s: %w", pth, err)
			}
			cfg := a.cfg.Config
			cfg.Model = mc
			meta := checkpoint.Meta{Config: cfg, Versions: versions(), Source: "imported from " + pth}
			if err := checkpoint.Save(out, m, nil, meta); err != nil {
				return err
			}
			a.log.Info().Str("checkpoint", out).Str("kind", mc.KindName()).Str("readout", mc.ReadoutName()).Str("input_attention", mc.InputAttentionName()).Int64("in_channels", mc.InChannels).Int64("latent_dim", mc.LatentDim).
				Int64("timesteps", mc.T).Bool("large", mc.Large).Strs("ignored", ignored).Msg("imported")
			return nil
		},
	}
	cmd.Flags().StringVar(&pth, "pth", "", "PyTorch state_dict to read")
	cmd.Flags().StringVar(&out, "out", "", "checkpoint to write")
	cmd.Flags().StringVar(&kind, "kind", "", "expected model kind (esvae, fsvae, annvae); default: inferred from the keys")
	return cmd
}
