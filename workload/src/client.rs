//! The HTTP calls to one coordinator: token exchange, signing key, challenge, release.
//!
//! Every failure becomes [`WorkloadError::Coordinator`] naming the coordinator, the step
//! and the coordinator's own reason (RFC 6749 `error` for the token endpoint, the Privacy
//! Sandbox `details[0].reason` for the key endpoints). Credentials travel only in headers
//! and [`Credential`], never in errors or logs.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use crate::WorkloadError;
use crate::config::CoordinatorConfig;
use crate::error::{CoordinatorReason, Role, Step};
use crate::token::SubjectToken;
use wire::{
    ChallengeResponse, EncryptionKey, EncryptionKeyList, KeyApiErrorBody, OAuthErrorBody, PeerKeys,
    ReleaseRequest, TokenResponse,
};

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
const SCOPE: &str = "keys:read keys:release";
/// Nonce length of a challenge (DESIGN §5.3).
const NONCE_LEN: usize = 32;

/// A coordinator's federated credential (its access token). Secret.
pub(crate) struct Credential(Zeroizing<String>);

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credential(<redacted>)")
    }
}

/// One coordinator as seen from the workload.
pub(crate) struct CoordinatorClient<'a> {
    pub(crate) role: Role,
    pub(crate) config: &'a CoordinatorConfig,
    pub(crate) http: &'a reqwest::Client,
}

impl CoordinatorClient<'_> {
    fn fail(&self, step: Step, reason: CoordinatorReason) -> WorkloadError {
        WorkloadError::Coordinator {
            coordinator: self.role,
            url: self.config.url.as_str().trim_end_matches('/').to_owned(),
            step,
            reason,
        }
    }

    fn unreachable(&self, step: Step, e: &reqwest::Error) -> WorkloadError {
        // reqwest's Display names the URL and the cause, never headers or bodies.
        let detail = std::error::Error::source(e)
            .map(|s| format!("{e}: {s}"))
            .unwrap_or_else(|| e.to_string());
        self.fail(step, CoordinatorReason::Unreachable(detail))
    }

    /// Reads a success body as `T`, or turns an error answer into the coordinator's reason.
    async fn answer<T: DeserializeOwned>(
        &self,
        step: Step,
        response: reqwest::Response,
    ) -> Result<T, WorkloadError> {
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.unreachable(step, &e))?;
        if status.is_success() {
            return serde_json::from_slice(&body)
                .map_err(|e| self.fail(step, CoordinatorReason::Malformed(e.to_string())));
        }
        let status = status.as_u16();
        let reason = if step == Step::TokenExchange {
            serde_json::from_slice::<OAuthErrorBody>(&body)
                .ok()
                .map(|b| CoordinatorReason::OAuth {
                    status,
                    error: b.error,
                    description: b.error_description.unwrap_or_default(),
                })
        } else {
            None
        };
        let reason = reason
            .or_else(|| {
                serde_json::from_slice::<KeyApiErrorBody>(&body)
                    .ok()
                    .map(|b| CoordinatorReason::Api {
                        status,
                        reason: b.reason().map(str::to_owned),
                        attestation_reason: b.attestation_reason().map(str::to_owned),
                        message: b.message,
                    })
            })
            .unwrap_or(CoordinatorReason::Http { status });
        Err(self.fail(step, reason))
    }

    /// RFC 8693 exchange of the cloud token for this coordinator's credential.
    pub(crate) async fn exchange(
        &self,
        subject: &SubjectToken,
    ) -> Result<Credential, WorkloadError> {
        let step = Step::TokenExchange;
        let response = self
            .http
            .post(self.config.endpoint("v1/token"))
            .form(&[
                ("grant_type", GRANT_TYPE),
                ("subject_token", subject.expose()),
                ("subject_token_type", JWT_TOKEN_TYPE),
                ("scope", SCOPE),
            ])
            .send()
            .await
            .map_err(|e| self.unreachable(step, &e))?;
        let token: TokenResponse = self.answer(step, response).await?;
        let credential = Credential(Zeroizing::new(token.access_token));
        if !token.token_type.eq_ignore_ascii_case("bearer") {
            return Err(self.fail(
                step,
                CoordinatorReason::Malformed(format!(
                    "token_type `{}` is not Bearer",
                    token.token_type
                )),
            ));
        }
        if credential.0.is_empty() {
            return Err(self.fail(
                step,
                CoordinatorReason::Malformed("empty access_token".into()),
            ));
        }
        Ok(credential)
    }

    /// The coordinator's public key signing key (SPKI DER): pinned, or `GET /v1/peer/keys`.
    pub(crate) async fn signing_key(&self) -> Result<Vec<u8>, WorkloadError> {
        if let Some(pinned) = self.config.pinned_signing_key() {
            return Ok(pinned);
        }
        let step = Step::SigningKey;
        let response = self
            .http
            .get(self.config.endpoint("v1/peer/keys"))
            .send()
            .await
            .map_err(|e| self.unreachable(step, &e))?;
        let keys: PeerKeys = self.answer(step, response).await?;
        B64.decode(keys.signing_key.trim())
            .ok()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                self.fail(
                    step,
                    CoordinatorReason::Malformed("signingKey is not base64".into()),
                )
            })
    }

    /// `POST /v1/attestation/challenge`: a single-use nonce.
    pub(crate) async fn challenge(
        &self,
        credential: &Credential,
    ) -> Result<[u8; NONCE_LEN], WorkloadError> {
        let step = Step::Challenge;
        let response = self
            .http
            .post(self.config.endpoint("v1/attestation/challenge"))
            .bearer_auth(credential.0.as_str())
            .send()
            .await
            .map_err(|e| self.unreachable(step, &e))?;
        let challenge: ChallengeResponse = self.answer(step, response).await?;
        B64.decode(challenge.nonce.trim())
            .ok()
            .and_then(|n| <[u8; NONCE_LEN]>::try_from(n.as_slice()).ok())
            .ok_or_else(|| {
                self.fail(
                    step,
                    CoordinatorReason::Malformed("nonce is not 32 bytes of base64".into()),
                )
            })
    }

    /// `POST /v1/encryptionKeys:release`.
    pub(crate) async fn release(
        &self,
        credential: &Credential,
        request: &ReleaseRequest,
    ) -> Result<Vec<EncryptionKey>, WorkloadError> {
        let step = Step::Release;
        let response = self
            .http
            .post(self.config.endpoint("v1/encryptionKeys:release"))
            .bearer_auth(credential.0.as_str())
            .json(request)
            .send()
            .await
            .map_err(|e| self.unreachable(step, &e))?;
        let released: EncryptionKeyList = self.answer(step, response).await?;
        Ok(released.keys)
    }
}
