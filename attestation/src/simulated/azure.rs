//! A simulated Azure confidential VM: what the paravisor (HCL) and the vTPM of a real one
//! produce, built on a [`SimulatedChip`]. The HCL report has the real layout (see
//! `crate::azure`), its runtime data names a generated RSA-2048 attestation key, and quotes
//! are `TPMS_ATTEST` structures marshalled with `tpm2-protocol` and signed with that key.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use tpm2_protocol::basic::{TpmList, TpmUint64};
use tpm2_protocol::data::{
    Tpm2bData, Tpm2bDigest, Tpm2bName, TpmAlgId, TpmSt, TpmsAttest, TpmsClockInfo, TpmsPcrSelect,
    TpmsPcrSelection, TpmsQuoteInfo, TpmuAttest,
};
use tpm2_protocol::{TpmMarshal as _, TpmWriter};

use super::{ReportFields, SimulatedChip, sim_err};
use crate::azure::AzureVtpmEvidence;
use crate::error::Error;
use crate::vtpm::{PCR_COUNT, PCR_LEN, TpmQuote};

/// A simulated vTPM: an attestation key and a PCR bank (SHA-256, all 24 PCRs quoted).
pub struct SimulatedVtpm {
    key: KeyPair,
    /// The PCR values it quotes, by PCR number; change them to test PCR policies.
    pub pcrs: [[u8; PCR_LEN]; PCR_COUNT],
}

impl std::fmt::Debug for SimulatedVtpm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedVtpm").finish_non_exhaustive()
    }
}

impl SimulatedVtpm {
    /// A vTPM with a fresh attestation key and PCR i = 32 bytes of value i.
    pub fn generate() -> Result<Self, Error> {
        let key = KeyPair::generate(KeySize::Rsa2048).map_err(|e| sim_err("RSA AK", e))?;
        let mut pcrs = [[0u8; PCR_LEN]; PCR_COUNT];
        for (i, pcr) in pcrs.iter_mut().enumerate() {
            *pcr = [u8::try_from(i).unwrap_or(u8::MAX); PCR_LEN];
        }
        Ok(SimulatedVtpm { key, pcrs })
    }

    /// The runtime data JSON the paravisor would write: this vTPM's attestation key, a VM
    /// configuration, and `user_data` (what the guest wrote to NV index 0x01400002).
    pub fn runtime_data(&self, user_data: &[u8; 64]) -> Vec<u8> {
        let public = PublicKeyComponents::<Vec<u8>>::from(self.key.public_key());
        serde_json::json!({
            "keys": [{
                "kid": "HCLAkPub",
                "key_ops": ["sign"],
                "kty": "RSA",
                "e": URL_SAFE_NO_PAD.encode(&public.e),
                "n": URL_SAFE_NO_PAD.encode(&public.n),
            }],
            "vm-configuration": {
                "console-enabled": false,
                "secure-boot": true,
                "tpm-enabled": true,
                "vmUniqueId": "00000000-0000-4000-8000-000000000000",
            },
            "user-data": hex::encode_upper(user_data),
        })
        .to_string()
        .into_bytes()
    }

    /// An HCL report: a report by `chip` with `fields`, except `report_data`, which is
    /// SHA-256 of `runtime_data` followed by zeros, as the paravisor asks for it.
    pub fn hcl_report(
        chip: &SimulatedChip,
        fields: &ReportFields,
        runtime_data: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let mut fields = fields.clone();
        fields.report_data = [0; 64];
        fields.report_data[..32].copy_from_slice(&Sha256::digest(runtime_data));
        let report = chip.sign_report(&fields)?;
        let variable_size = u32::try_from(runtime_data.len()).map_err(|e| sim_err("size", e))?;
        let mut hcl = Vec::with_capacity(2600);
        hcl.extend_from_slice(b"HCLA");
        for word in [1u32, 32 + 1184 + 20 + variable_size, 2, 0, 0, 0, 0] {
            hcl.extend_from_slice(&word.to_le_bytes());
        }
        hcl.extend_from_slice(&report);
        // Runtime data header: data size, version 1, report type SNP (2), SHA-256 (1).
        for word in [20 + variable_size, 1, 2, 1, variable_size] {
            hcl.extend_from_slice(&word.to_le_bytes());
        }
        hcl.extend_from_slice(runtime_data);
        // The NV index is 2600 bytes, zero-padded.
        if hcl.len() < 2600 {
            hcl.resize(2600, 0);
        }
        Ok(hcl)
    }

    /// A quote of every PCR over `nonce` (`extraData`), signed with the attestation key.
    pub fn quote(&self, nonce: &[u8]) -> Result<TpmQuote, Error> {
        let tpm = |e: tpm2_protocol::TpmError| sim_err("TPM structure", format!("{e:?}"));
        let mut digest = Sha256::new();
        for pcr in &self.pcrs {
            digest.update(pcr);
        }
        let mut pcr_select = TpmList::new();
        pcr_select
            .try_push(TpmsPcrSelection {
                hash: TpmAlgId::Sha256,
                pcr_select: TpmsPcrSelect::try_from(&[0xff, 0xff, 0xff][..]).map_err(tpm)?,
            })
            .map_err(tpm)?;
        let public = PublicKeyComponents::<Vec<u8>>::from(self.key.public_key());
        let mut name = vec![0x00, 0x0b];
        name.extend_from_slice(&Sha256::digest(&public.n));
        let attest = TpmsAttest {
            attest_type: TpmSt::AttestQuote,
            qualified_signer: Tpm2bName::try_from(name.as_slice()).map_err(tpm)?,
            extra_data: Tpm2bData::try_from(nonce).map_err(tpm)?,
            clock_info: TpmsClockInfo::default(),
            firmware_version: TpmUint64::new(0),
            attested: TpmuAttest::Quote(TpmsQuoteInfo {
                pcr_select,
                pcr_digest: Tpm2bDigest::try_from(digest.finalize().as_slice()).map_err(tpm)?,
            }),
        };
        let mut buffer = [0u8; 1024];
        let mut writer = TpmWriter::new(&mut buffer);
        attest.marshal(&mut writer).map_err(tpm)?;
        let message = writer.as_bytes().to_vec();

        let mut signature = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                &message,
                &mut signature,
            )
            .map_err(|e| sim_err("quote signature", e))?;
        TpmQuote::new(
            message,
            signature,
            self.pcrs.iter().map(|p| p.to_vec()).collect(),
        )
    }

    /// Evidence of a VM on `chip` for a release: `user-data` = `binding_user_data`
    /// (SHA-512(nonce ‖ teePublicKey) for an honest guest) and a quote over `quote_nonce`.
    pub fn evidence(
        &self,
        chip: &SimulatedChip,
        fields: &ReportFields,
        binding_user_data: &[u8; 64],
        quote_nonce: &[u8],
    ) -> Result<AzureVtpmEvidence, Error> {
        let runtime = self.runtime_data(binding_user_data);
        let hcl = Self::hcl_report(chip, fields, &runtime)?;
        AzureVtpmEvidence::from_parts(&hcl, self.quote(quote_nonce)?, chip.cert_pems())
    }
}
