//! Path parameters: `{groupID}`, `{webhookID}`, `{deliveryID}`, in that order.
//!
//! A `webhookID` or `deliveryID` of the wrong shape names nothing that can
//! exist, so it is "not found", but only after the checks a well-formed one
//! would pass first: the group, then the webhook.

use actix_web::HttpRequest;
use webhooks_domain::{
    DeliveryId, DomainError, GroupId, Principal, Resource, WebhookId, WebhookService,
};

use crate::inbound::error::{ApiError, RequestError};

fn segment<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.match_info().get(name).filter(|raw| !raw.is_empty())
}

/// `{groupID}`: present and not empty, then ASCII digits forming a positive `i64`.
pub(crate) fn group_id(req: &HttpRequest) -> Result<GroupId, RequestError> {
    let raw = segment(req, "groupID").ok_or(RequestError::MissingGroupId)?;
    GroupId::parse(raw).map_err(|_| RequestError::GroupIdNotANumber)
}

/// `/webhooks/{groupID}/{webhookID}…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WebhookPath {
    pub(crate) group: GroupId,
    /// `None`: present but of a shape no webhook id has.
    webhook: Option<WebhookId>,
}

impl WebhookPath {
    /// `{groupID}`, then `{webhookID}` present and not empty.
    pub(crate) fn read(req: &HttpRequest) -> Result<Self, RequestError> {
        let group = group_id(req)?;
        let raw = segment(req, "webhookID").ok_or(RequestError::MissingWebhookId)?;
        Ok(Self {
            group,
            webhook: WebhookId::parse(raw),
        })
    }

    /// The webhook's id. One of the wrong shape answers what a well-formed
    /// unknown one would: the group's check first, then "Webhook not found".
    pub(crate) async fn webhook(
        &self,
        caller: &Principal,
        webhooks: &WebhookService,
    ) -> Result<&WebhookId, ApiError> {
        match &self.webhook {
            Some(id) => Ok(id),
            None => {
                webhooks.authorize_group(caller, self.group).await?;
                Err(DomainError::NotFound(Resource::Webhook).into())
            }
        }
    }
}

/// `/webhooks/{groupID}/{webhookID}/deliveries/{deliveryID}…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeliveryPath {
    pub(crate) webhook: WebhookPath,
    /// `None`: absent, or of a shape no delivery id has.
    delivery: Option<DeliveryId>,
}

impl DeliveryPath {
    /// As [`WebhookPath::read`]; the delivery id is judged later.
    pub(crate) fn read(req: &HttpRequest) -> Result<Self, RequestError> {
        Ok(Self {
            webhook: WebhookPath::read(req)?,
            delivery: segment(req, "deliveryID").and_then(DeliveryId::parse),
        })
    }

    /// The webhook's and the delivery's ids. A delivery id of the wrong shape
    /// answers "Delivery not found" once the group and the webhook are found.
    pub(crate) async fn ids(
        &self,
        caller: &Principal,
        webhooks: &WebhookService,
    ) -> Result<(&WebhookId, &DeliveryId), ApiError> {
        let webhook = self.webhook.webhook(caller, webhooks).await?;
        match &self.delivery {
            Some(delivery) => Ok((webhook, delivery)),
            None => {
                webhooks.get(caller, self.webhook.group, webhook).await?;
                Err(DomainError::NotFound(Resource::Delivery).into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    const WEBHOOK: &str = "we_01hzy3k4m5n6p7q8r9s0t1v2w3";

    fn request(params: &[(&'static str, &str)]) -> HttpRequest {
        params
            .iter()
            .fold(TestRequest::default(), |req, (name, value)| {
                req.param(*name, (*value).to_owned())
            })
            .to_http_request()
    }

    #[test]
    fn a_missing_or_empty_group_id_is_missing() {
        for req in [request(&[]), request(&[("groupID", "")])] {
            assert_eq!(group_id(&req), Err(RequestError::MissingGroupId));
        }
    }

    #[test]
    fn a_group_id_that_is_not_a_positive_i64_is_not_a_number() {
        for raw in ["abc", "0", "-1", "+1", " 1", "1.0", "9223372036854775808"] {
            assert_eq!(
                group_id(&request(&[("groupID", raw)])),
                Err(RequestError::GroupIdNotANumber),
                "{raw}"
            );
        }
        assert_eq!(
            group_id(&request(&[("groupID", "007")])).map(GroupId::get),
            Ok(7)
        );
    }

    #[test]
    fn the_group_id_is_read_before_the_webhook_id() {
        assert_eq!(
            WebhookPath::read(&request(&[("groupID", "x")])),
            Err(RequestError::GroupIdNotANumber)
        );
        for req in [
            request(&[("groupID", "1")]),
            request(&[("groupID", "1"), ("webhookID", "")]),
        ] {
            assert_eq!(WebhookPath::read(&req), Err(RequestError::MissingWebhookId));
        }
    }

    #[test]
    fn a_webhook_id_of_the_wrong_shape_is_kept_for_later() {
        let path = WebhookPath::read(&request(&[("groupID", "1"), ("webhookID", "we_x")]));
        assert_eq!(path.map(|path| path.webhook), Ok(None));
        let path = WebhookPath::read(&request(&[("groupID", "1"), ("webhookID", WEBHOOK)]));
        assert_eq!(path.map(|path| path.webhook), Ok(WebhookId::parse(WEBHOOK)));
    }

    #[test]
    fn a_delivery_id_absent_or_of_the_wrong_shape_is_kept_for_later() {
        for delivery in [None, Some("dlv_x"), Some(WEBHOOK)] {
            let mut params = vec![("groupID", "1"), ("webhookID", WEBHOOK)];
            params.extend(delivery.map(|raw| ("deliveryID", raw)));
            let path = DeliveryPath::read(&request(&params));
            assert_eq!(path.map(|path| path.delivery), Ok(None), "{delivery:?}");
        }
    }

    /// The checks a malformed id waits for, against mocked ports: the
    /// caller's organization owns group 1 when `group_is_theirs`, and its
    /// webhook [`WEBHOOK`] exists when `webhook_exists`.
    mod order {
        use std::sync::Arc;

        use webhooks_domain::ports::{
            MockClock, MockIdSource, MockTenancyRepository, MockWebhookRepository,
        };
        use webhooks_domain::{
            ApiKeyId, Description, EnabledEvents, Group, OrganizationId, SealedSecret,
            SecretCipher, UnixMillis, Webhook, WebhookStatus, WebhookUrl,
        };

        use super::*;

        fn organization(n: u128) -> OrganizationId {
            OrganizationId::from_ulid(ulid::Ulid(n))
        }

        fn caller() -> Principal {
            Principal {
                organization_id: organization(1),
                api_key_id: ApiKeyId::from_ulid(ulid::Ulid(1)),
                group: None,
            }
        }

        fn service(group_is_theirs: bool, webhook_exists: Option<bool>) -> WebhookService {
            let mut tenancy = MockTenancyRepository::new();
            let owner = organization(if group_is_theirs { 1 } else { 2 });
            tenancy.expect_find_group().times(1).returning(move |id| {
                Ok(Some(Group {
                    id,
                    organization_id: owner.clone(),
                    name: "Production".to_owned(),
                    operations: false,
                    created_at: UnixMillis(0),
                }))
            });
            let mut webhooks = MockWebhookRepository::new();
            match webhook_exists {
                Some(exists) => {
                    webhooks
                        .expect_find()
                        .times(1)
                        .returning(move |group, id| Ok(exists.then(|| webhook(group, id))));
                }
                None => {
                    webhooks.expect_find().never();
                }
            }
            WebhookService::new(
                Arc::new(webhooks),
                Arc::new(tenancy),
                Arc::new(MockClock::new()),
                Arc::new(MockIdSource::new()),
                SecretCipher::new(&[7; 32]).unwrap(),
            )
        }

        fn webhook(group: GroupId, id: &WebhookId) -> Webhook {
            Webhook {
                id: id.clone(),
                group_id: group,
                url: WebhookUrl::new("https://a.example/").unwrap(),
                description: Description::new("").unwrap(),
                status: WebhookStatus::Enabled,
                enabled_events: EnabledEvents::all(),
                rate_limit: None,
                secret: SealedSecret::from_stored("sealed".to_owned()),
                headers: None,
                ordering: None,
                created_at: UnixMillis(0),
                updated_at: UnixMillis(0),
            }
        }

        async fn webhook_answer(webhook: &str, service: &WebhookService) -> String {
            let path =
                WebhookPath::read(&request(&[("groupID", "1"), ("webhookID", webhook)])).unwrap();
            match path.webhook(&caller(), service).await {
                Ok(id) => id.to_string(),
                Err(err) => err.client_message(),
            }
        }

        #[actix_web::test]
        async fn a_malformed_webhook_id_in_another_organizations_group_is_group_not_found() {
            assert_eq!(
                webhook_answer("nope", &service(false, None)).await,
                "Group not found"
            );
        }

        #[actix_web::test]
        async fn a_malformed_webhook_id_in_the_callers_group_is_webhook_not_found_unread() {
            for malformed in [
                "nope",
                &WEBHOOK.to_uppercase(),
                "evt_01hzy3k4m5n6p7q8r9s0t1v2w3",
            ] {
                assert_eq!(
                    webhook_answer(malformed, &service(true, None)).await,
                    "Webhook not found",
                    "{malformed}"
                );
            }
        }

        #[actix_web::test]
        async fn a_well_formed_webhook_id_is_left_to_the_use_case() {
            let untouched = WebhookService::new(
                Arc::new(MockWebhookRepository::new()),
                Arc::new(MockTenancyRepository::new()),
                Arc::new(MockClock::new()),
                Arc::new(MockIdSource::new()),
                SecretCipher::new(&[7; 32]).unwrap(),
            );
            assert_eq!(webhook_answer(WEBHOOK, &untouched).await, WEBHOOK);
        }

        async fn delivery_answer(delivery: &str, service: &WebhookService) -> String {
            let params = [
                ("groupID", "1"),
                ("webhookID", WEBHOOK),
                ("deliveryID", delivery),
            ];
            let path = DeliveryPath::read(&request(&params)).unwrap();
            match path.ids(&caller(), service).await {
                Ok((_, id)) => id.to_string(),
                Err(err) => err.client_message(),
            }
        }

        #[actix_web::test]
        async fn a_malformed_delivery_id_is_delivery_not_found_once_the_webhook_is_found() {
            for malformed in ["", "dlv_short", "dlv_01HZY3K4M5N6P7Q8R9S0T1V2W3", WEBHOOK] {
                assert_eq!(
                    delivery_answer(malformed, &service(true, Some(true))).await,
                    "Delivery not found",
                    "{malformed}"
                );
            }
        }

        #[actix_web::test]
        async fn a_malformed_delivery_id_of_an_unknown_webhook_is_webhook_not_found() {
            assert_eq!(
                delivery_answer("nope", &service(true, Some(false))).await,
                "Webhook not found"
            );
            assert_eq!(
                delivery_answer("nope", &service(false, None)).await,
                "Group not found"
            );
        }
    }
}
