//! Every real webhook payload in tests/fixtures/whatsapp parses, and the fields that matter for
//! each message type, status and error come out right — through the typed model and through
//! `build_batch`, which is what the webhook stores.

use baton_shared::domain::{BatchOrigin, ParseState, build_batch};
use baton_shared::whatsapp::*;
use bytes::Bytes;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../../tests/fixtures/whatsapp/", $name))
    };
}

/// Every fixture, so none can be forgotten.
const ALL: &[(&str, &str)] = &[
    ("audio.json", fixture!("audio.json")),
    ("audio_voice.json", fixture!("audio_voice.json")),
    ("button.json", fixture!("button.json")),
    (
        "button_no_context_from_user_id.json",
        fixture!("button_no_context_from_user_id.json"),
    ),
    ("contacts.json", fixture!("contacts.json")),
    ("document.json", fixture!("document.json")),
    ("edit_image.json", fixture!("edit_image.json")),
    ("errors.json", fixture!("errors.json")),
    ("image.json", fixture!("image.json")),
    ("image_no_url.json", fixture!("image_no_url.json")),
    (
        "interactive_button_reply.json",
        fixture!("interactive_button_reply.json"),
    ),
    (
        "interactive_list_reply.json",
        fixture!("interactive_list_reply.json"),
    ),
    (
        "interactive_nfm_reply.json",
        fixture!("interactive_nfm_reply.json"),
    ),
    (
        "interactive_with_value_errors.json",
        fixture!("interactive_with_value_errors.json"),
    ),
    ("location.json", fixture!("location.json")),
    ("location_current.json", fixture!("location_current.json")),
    ("order.json", fixture!("order.json")),
    ("reaction.json", fixture!("reaction.json")),
    (
        "reaction_emoji_escaped.json",
        fixture!("reaction_emoji_escaped.json"),
    ),
    ("reaction_removed.json", fixture!("reaction_removed.json")),
    (
        "reaction_removed_empty_emoji.json",
        fixture!("reaction_removed_empty_emoji.json"),
    ),
    ("revoke.json", fixture!("revoke.json")),
    (
        "statuses_delivered.json",
        fixture!("statuses_delivered.json"),
    ),
    (
        "statuses_delivered_bsuid.json",
        fixture!("statuses_delivered_bsuid.json"),
    ),
    (
        "statuses_delivered_bsuid_no_phone.json",
        fixture!("statuses_delivered_bsuid_no_phone.json"),
    ),
    ("statuses_failed.json", fixture!("statuses_failed.json")),
    (
        "statuses_failed_130472.json",
        fixture!("statuses_failed_130472.json"),
    ),
    (
        "statuses_failed_131026.json",
        fixture!("statuses_failed_131026.json"),
    ),
    ("statuses_played.json", fixture!("statuses_played.json")),
    ("statuses_read.json", fixture!("statuses_read.json")),
    ("statuses_sent.json", fixture!("statuses_sent.json")),
    (
        "statuses_sent_biz_opaque_callback_data.json",
        fixture!("statuses_sent_biz_opaque_callback_data.json"),
    ),
    (
        "statuses_v24_no_conversation_no_pricing.json",
        fixture!("statuses_v24_no_conversation_no_pricing.json"),
    ),
    ("sticker_animated.json", fixture!("sticker_animated.json")),
    ("sticker_static.json", fixture!("sticker_static.json")),
    (
        "system_customer_identity_changed.json",
        fixture!("system_customer_identity_changed.json"),
    ),
    (
        "system_user_changed_number.json",
        fixture!("system_user_changed_number.json"),
    ),
    ("text.json", fixture!("text.json")),
    (
        "text_bsuid_username_no_phone.json",
        fixture!("text_bsuid_username_no_phone.json"),
    ),
    ("text_forwarded.json", fixture!("text_forwarded.json")),
    (
        "text_frequently_forwarded.json",
        fixture!("text_frequently_forwarded.json"),
    ),
    (
        "text_message_business_button.json",
        fixture!("text_message_business_button.json"),
    ),
    (
        "text_referral_ctwa.json",
        fixture!("text_referral_ctwa.json"),
    ),
    (
        "text_reply_context.json",
        fixture!("text_reply_context.json"),
    ),
    ("unknown_legacy.json", fixture!("unknown_legacy.json")),
    ("unsupported.json", fixture!("unsupported.json")),
    (
        "unsupported_no_subtype.json",
        fixture!("unsupported_no_subtype.json"),
    ),
    ("video.json", fixture!("video.json")),
];

struct Parsed {
    metadata: Metadata,
    contacts: Vec<Contact>,
    messages: Vec<InboundMessage>,
    statuses: Vec<Status>,
    errors: Vec<WaError>,
}

fn parse(body: &str) -> Parsed {
    let n: Notification<'_> = serde_json::from_str(body).expect("notification parses");
    assert_eq!(n.object, "whatsapp_business_account");
    let change = &n.entry[0].changes[0];
    assert_eq!(change.field, "messages");
    let v: MessagesValue<'_> =
        serde_json::from_str(change.value.unwrap().get()).expect("value parses");
    Parsed {
        messages: v
            .messages
            .iter()
            .map(|m| serde_json::from_str(m.get()).expect("message parses"))
            .collect(),
        statuses: v
            .statuses
            .iter()
            .map(|s| serde_json::from_str(s.get()).expect("status parses"))
            .collect(),
        metadata: v.metadata,
        contacts: v.contacts,
        errors: v.errors,
    }
}

fn message(body: &str) -> InboundMessage {
    let p = parse(body);
    assert_eq!(p.messages.len(), 1);
    p.messages.into_iter().next().unwrap()
}

fn status(body: &str) -> Status {
    let p = parse(body);
    assert_eq!(p.statuses.len(), 1);
    p.statuses.into_iter().next().unwrap()
}

#[test]
fn all_48_fixtures_parse_and_store_completely() {
    assert_eq!(ALL.len(), 48);
    for (name, body) in ALL {
        let p = parse(body);
        let batch = build_batch(Bytes::from_static(body.as_bytes()), 1, BatchOrigin::Webhook);
        assert_eq!(
            batch.delivery.state,
            ParseState::Parsed,
            "{name}: {:?}",
            batch.delivery.problems
        );
        assert_eq!(batch.messages.len(), p.messages.len(), "{name}");
        assert_eq!(
            batch.delivery.status_count as usize,
            p.statuses.len(),
            "{name}"
        );
        // Stored: failures, and the statuses of replies Baton sent; nobody reads the rest.
        let read = p
            .statuses
            .iter()
            .filter(|s| {
                s.status == StatusKind::Failed
                    || s.biz_opaque_callback_data
                        .as_deref()
                        .is_some_and(|d| d.starts_with("baton|"))
            })
            .count();
        assert_eq!(batch.statuses.len(), read, "{name}");
        for (record, m) in batch.messages.iter().zip(&p.messages) {
            assert_eq!(record.wamid, m.id, "{name}");
            assert_eq!(record.timestamp, m.timestamp, "{name}");
            assert_eq!(record.kind, m.kind, "{name}");
            assert_eq!(
                record.conversation.phone_number_id, p.metadata.phone_number_id,
                "{name}"
            );
            // The raw JSON kept for each message reparses to the same message.
            assert_eq!(
                &serde_json::from_str::<InboundMessage>(&record.raw).unwrap(),
                m,
                "{name}"
            );
        }
    }
}

#[test]
fn text_with_its_sender_and_profile() {
    let p = parse(fixture!("text.json"));
    let m = &p.messages[0];
    assert_eq!(
        m.id,
        "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
    );
    assert_eq!(m.from.as_deref(), Some("16505551234"));
    assert_eq!(m.timestamp, 1_749_416_383);
    assert_eq!(
        m.content,
        Content::Text(Text {
            body: "Does it come in another color?".into()
        })
    );
    assert_eq!(p.metadata.phone_number_id, "106540352242922");
    assert_eq!(p.metadata.display_phone_number, "15550783881");
    assert_eq!(p.contacts[0].wa_id.as_deref(), Some("16505551234"));
    assert_eq!(
        p.contacts[0].profile.as_ref().unwrap().name.as_deref(),
        Some("Sheena Nelson")
    );
}

#[test]
fn username_customer_without_a_phone_is_keyed_on_the_bsuid() {
    let body = fixture!("text_bsuid_username_no_phone.json");
    let p = parse(body);
    let m = &p.messages[0];
    assert_eq!(m.from, None);
    assert_eq!(m.from_user_id.as_deref(), Some("US.13491208655302741918"));
    assert_eq!(
        m.from_parent_user_id.as_deref(),
        Some("US.ENT.11815799212886844830")
    );
    let c = &p.contacts[0];
    assert_eq!(c.wa_id, None);
    assert_eq!(c.user_id.as_deref(), Some("US.13491208655302741918"));
    assert_eq!(
        c.profile.as_ref().unwrap().username.as_deref(),
        Some("@realsheenanelson")
    );

    let batch = build_batch(Bytes::from_static(body.as_bytes()), 1, BatchOrigin::Webhook);
    assert_eq!(
        batch.messages[0].conversation.customer,
        "US.13491208655302741918"
    );
    let conv = &batch.conversations[0];
    assert_eq!(conv.wa_id, None);
    assert_eq!(conv.username.as_deref(), Some("@realsheenanelson"));
    assert_eq!(conv.profile_name.as_deref(), Some("Sheena Nelson"));
    assert_eq!(conv.last_inbound_at, Some(1_749_416_383));
}

#[test]
fn bsuid_from_contacts_wins_over_the_phone_number() {
    let body = fixture!("text_forwarded.json");
    let batch = build_batch(Bytes::from_static(body.as_bytes()), 1, BatchOrigin::Webhook);
    assert_eq!(
        batch.messages[0].conversation.customer,
        "US.13491208655302741918"
    );
    assert_eq!(batch.conversations[0].wa_id.as_deref(), Some("15550000002"));
    // Without any BSUID the phone number is the customer.
    let batch = build_batch(
        Bytes::from_static(fixture!("text.json").as_bytes()),
        1,
        BatchOrigin::Webhook,
    );
    assert_eq!(batch.messages[0].conversation.customer, "16505551234");
}

#[test]
fn media_types_keep_id_mime_hash_url_caption_and_flags() {
    let m = message(fixture!("image.json"));
    let Content::Image(img) = &m.content else {
        panic!("{:?}", m.content)
    };
    assert_eq!(img.id, "1003383421387256");
    assert_eq!(img.mime_type.as_deref(), Some("image/jpeg"));
    assert_eq!(
        img.sha256.as_deref(),
        Some("SfInY0gGKTsJlUWbwxC1k+FAD0FZHvzwfpvO0zX0GUI=")
    );
    assert_eq!(img.caption.as_deref(), Some("Taj Mahal"));
    assert!(
        img.url
            .as_deref()
            .unwrap()
            .starts_with("https://lookaside.fbsbx.com/")
    );

    let m = message(fixture!("image_no_url.json"));
    assert_eq!(m.content.media().unwrap().url, None);
    assert_eq!(m.content.media().unwrap().id, "65463453");

    let m = message(fixture!("audio.json"));
    let Content::Audio(a) = &m.content else {
        panic!()
    };
    assert_eq!(a.voice, Some(false));
    assert_eq!(a.mime_type.as_deref(), Some("audio/ogg; codecs=opus"));
    assert_eq!(m.context.as_ref().unwrap().forwarded, Some(true));
    let Content::Audio(a) = message(fixture!("audio_voice.json")).content else {
        panic!()
    };
    assert_eq!(a.voice, Some(true));

    let m = message(fixture!("video.json"));
    let Content::Video(v) = &m.content else {
        panic!()
    };
    assert_eq!(
        (v.id.as_str(), v.caption.as_deref()),
        ("765756756", Some("caption"))
    );

    let Content::Document(d) = message(fixture!("document.json")).content else {
        panic!()
    };
    assert_eq!(d.filename.as_deref(), Some("receipt.pdf"));
    assert_eq!(d.mime_type.as_deref(), Some("application/pdf"));
    assert_eq!(d.caption.as_deref(), Some("my receipt"));
    assert_eq!(d.id, "622684793477189");

    let Content::Sticker(s) = message(fixture!("sticker_animated.json")).content else {
        panic!()
    };
    assert_eq!(
        (s.animated, s.mime_type.as_deref()),
        (Some(true), Some("image/webp"))
    );
    let Content::Sticker(s) = message(fixture!("sticker_static.json")).content else {
        panic!()
    };
    assert_eq!(s.animated, Some(false));
}

#[test]
fn location_with_and_without_a_place() {
    let Content::Location(l) = message(fixture!("location.json")).content else {
        panic!()
    };
    assert_eq!(
        (l.latitude, l.longitude),
        (37.44221496582, -122.16165924072)
    );
    assert_eq!(l.name.as_deref(), Some("Philz Coffee"));
    assert_eq!(
        l.address.as_deref(),
        Some("101 Forest Ave, Palo Alto, CA 94301")
    );
    assert_eq!(l.url.as_deref(), Some("https://philzcoffee.com/"));
    let Content::Location(l) = message(fixture!("location_current.json")).content else {
        panic!()
    };
    assert_eq!(
        (l.latitude, l.longitude, l.name),
        (12.25089, 43.90539, None)
    );
}

#[test]
fn shared_contact_cards() {
    let Content::Contacts(cards) = message(fixture!("contacts.json")).content else {
        panic!()
    };
    assert_eq!(cards.len(), 1);
    assert_eq!(
        cards[0].name.formatted_name.as_deref(),
        Some("Barbara J. Johnson")
    );
    assert_eq!(
        cards[0].phones[0].phone.as_deref(),
        Some("+1 (415) 555-0829")
    );
    assert_eq!(cards[0].phones[0].wa_id.as_deref(), Some("14125550829"));
    assert_eq!(
        cards[0].org.as_ref().unwrap().company.as_deref(),
        Some("Social Tsunami")
    );
}

#[test]
fn interactive_replies_of_every_kind() {
    let m = message(fixture!("interactive_button_reply.json"));
    assert_eq!(
        m.content,
        Content::Interactive(Interactive::ButtonReply {
            id: "cancel-button".into(),
            title: "Cancel".into()
        })
    );
    assert_eq!(
        m.context.unwrap().id.as_deref(),
        Some("wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MEM2RUJFNkI0RENGQTVDRjUA")
    );
    assert_eq!(
        message(fixture!("interactive_list_reply.json")).content,
        Content::Interactive(Interactive::ListReply {
            id: "priority_express".into(),
            title: "Priority Mail Express".into(),
            description: Some("Next Day to 2 Days".into()),
        })
    );
    let Content::Interactive(Interactive::NfmReply {
        name,
        body,
        response_json,
    }) = message(fixture!("interactive_nfm_reply.json")).content
    else {
        panic!()
    };
    assert_eq!(
        (name.as_deref(), body.as_deref()),
        (Some("flow"), Some("Sent"))
    );
    let answers: serde_json::Value = serde_json::from_str(&response_json).unwrap();
    assert_eq!(answers["delivery_rating"], "4");
}

#[test]
fn interactive_without_payload_keeps_the_value_level_error() {
    let body = fixture!("interactive_with_value_errors.json");
    let p = parse(body);
    assert_eq!(p.messages[0].kind, "interactive");
    assert_eq!(
        p.messages[0].content,
        Content::Unknown {
            kind: "interactive".into()
        }
    );
    assert_eq!(p.errors[0].code, 131000);
    assert_eq!(
        p.errors[0].explanation(),
        Some("Unsupported webhook payload")
    );
    let batch = build_batch(Bytes::from_static(body.as_bytes()), 1, BatchOrigin::Webhook);
    assert_eq!(batch.delivery.errors[0].code, 131000);
    assert_eq!(batch.messages.len(), 1);
}

#[test]
fn template_button_taps() {
    let m = message(fixture!("button.json"));
    assert_eq!(
        m.content,
        Content::Button(Button {
            payload: Some("Unsubscribe".into()),
            text: "Unsubscribe".into()
        })
    );
    assert!(m.context.unwrap().id.is_some());
    let m = message(fixture!("button_no_context_from_user_id.json"));
    assert_eq!(m.from_user_id.as_deref(), Some("US.13491208655302741918"));
    assert_eq!(m.context, None);
}

#[test]
fn reactions_and_their_removal() {
    let Content::Reaction(r) = message(fixture!("reaction.json")).content else {
        panic!()
    };
    assert_eq!(r.emoji.as_deref(), Some("👍"));
    assert_eq!(
        r.message_id,
        "wamid.HBgLMTQxMjU1NTA4MjkVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAA="
    );
    let Content::Reaction(r) = message(fixture!("reaction_emoji_escaped.json")).content else {
        panic!()
    };
    assert_eq!(r.emoji.as_deref(), Some("👍🏻"));
    for removed in [
        fixture!("reaction_removed.json"),
        fixture!("reaction_removed_empty_emoji.json"),
    ] {
        let Content::Reaction(r) = message(removed).content else {
            panic!()
        };
        assert_eq!((r.message_id.as_str(), r.emoji), ("wamid.yzxyzx=", None));
    }
}

#[test]
fn orders() {
    let Content::Order(o) = message(fixture!("order.json")).content else {
        panic!()
    };
    assert_eq!(o.catalog_id, "194836987003835");
    assert_eq!(o.text.as_deref(), Some("Love these!"));
    assert_eq!(o.product_items.len(), 2);
    assert_eq!(o.product_items[0].product_retailer_id, "di9ozbzfi4");
    assert_eq!(
        (o.product_items[0].quantity, o.product_items[0].item_price),
        (2.0, 30.0)
    );
    assert_eq!(o.product_items[1].currency, "USD");
}

#[test]
fn system_notices_do_not_reopen_the_reply_window() {
    let body = fixture!("system_user_changed_number.json");
    let m = message(body);
    let Content::System(s) = &m.content else {
        panic!()
    };
    assert_eq!(s.kind.as_deref(), Some("user_changed_number"));
    assert_eq!(s.wa_id.as_deref(), Some("12195555358"));
    let batch = build_batch(Bytes::from_static(body.as_bytes()), 1, BatchOrigin::Webhook);
    assert_eq!(batch.messages[0].conversation.customer, "16505551234");
    assert_eq!(batch.conversations[0].last_inbound_at, None);

    let m = message(fixture!("system_customer_identity_changed.json"));
    let Content::System(s) = &m.content else {
        panic!()
    };
    assert_eq!(s.kind.as_deref(), Some("customer_identity_changed"));
    let id = m.identity.unwrap();
    assert_eq!(
        (id.acknowledged, id.hash.as_deref()),
        (Some(true), Some("xyzxyz"))
    );
}

#[test]
fn unsupported_unknown_and_their_errors() {
    let m = message(fixture!("unsupported.json"));
    assert_eq!(
        m.content,
        Content::Unsupported(Unsupported {
            kind: Some("edit".into())
        })
    );
    assert_eq!(m.errors[0].code, 131051);
    assert_eq!(
        m.errors[0].explanation(),
        Some("Message type is currently not supported.")
    );
    let m = message(fixture!("unsupported_no_subtype.json"));
    assert_eq!(m.content, Content::Unsupported(Unsupported { kind: None }));
    let m = message(fixture!("unknown_legacy.json"));
    assert_eq!(m.kind, "unknown");
    assert_eq!(m.errors[0].code, 131051);
    // The 2022 shape carries `details` at the top level.
    assert_eq!(
        m.errors[0].explanation(),
        Some("Message type is not currently supported")
    );
}

#[test]
fn revoke_and_edit() {
    let Content::Revoke(r) = message(fixture!("revoke.json")).content else {
        panic!()
    };
    assert_eq!(
        r.original_message_id,
        "wamid.HBgLMTQxMjU1NTA4MjkVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAA="
    );
    let Content::Edit(e) = message(fixture!("edit_image.json")).content else {
        panic!()
    };
    assert_eq!(
        e.original_message_id,
        "wamid.HBgLMTQxMjU1NTA4MjkVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAA="
    );
    let edited = e.message.unwrap();
    let Content::Image(img) = &edited.content else {
        panic!()
    };
    assert_eq!(img.caption.as_deref(), Some("Updated image caption"));
    assert_eq!(edited.id, e.original_message_id);
}

#[test]
fn context_replies_forwards_and_product_enquiries() {
    let c = message(fixture!("text_reply_context.json"))
        .context
        .unwrap();
    assert_eq!(
        (c.from.as_deref(), c.id.as_deref()),
        (Some("15550000001"), Some("wamid.xyzxyz=="))
    );
    assert_eq!(
        message(fixture!("text_forwarded.json"))
            .context
            .unwrap()
            .forwarded,
        Some(true)
    );
    let c = message(fixture!("text_frequently_forwarded.json"))
        .context
        .unwrap();
    assert_eq!(c.frequently_forwarded, Some(true));
    let c = message(fixture!("text_message_business_button.json"))
        .context
        .unwrap();
    let p = c.referred_product.unwrap();
    assert_eq!(
        (p.catalog_id.as_str(), p.product_retailer_id.as_str()),
        ("194836987003835", "di9ozbzfi4")
    );
}

#[test]
fn click_to_whatsapp_referral() {
    let r = message(fixture!("text_referral_ctwa.json"))
        .referral
        .unwrap();
    assert_eq!(r.source_type.as_deref(), Some("ad"));
    assert_eq!(r.source_id.as_deref(), Some("120226305854810726"));
    assert_eq!(r.headline.as_deref(), Some("Chat with us"));
    assert_eq!(r.media_type.as_deref(), Some("image"));
    assert!(r.ctwa_clid.unwrap().starts_with("Aff-n8ZT"));
    assert_eq!(
        r.welcome_message.unwrap().text,
        "Hi there! Let us know how we can help!"
    );
}

#[test]
fn statuses_of_every_kind() {
    let s = status(fixture!("statuses_sent.json"));
    assert_eq!(
        (s.status.clone(), s.timestamp),
        (StatusKind::Sent, 1_750_030_073)
    );
    assert_eq!(s.recipient_id.as_deref(), Some("16505551234"));
    let conv = s.conversation.unwrap();
    assert_eq!(conv.expiration_timestamp, Some(1_750_116_480));
    assert_eq!(conv.origin.unwrap().kind.as_deref(), Some("marketing"));
    assert_eq!(s.pricing.unwrap().pricing_model.as_deref(), Some("PMP"));

    assert_eq!(
        status(fixture!("statuses_delivered.json")).status,
        StatusKind::Delivered
    );
    assert_eq!(
        status(fixture!("statuses_read.json")).status,
        StatusKind::Read
    );
    assert_eq!(
        status(fixture!("statuses_played.json")).status,
        StatusKind::Played
    );
    let s = status(fixture!("statuses_v24_no_conversation_no_pricing.json"));
    assert_eq!((s.conversation, s.pricing), (None, None));
    let s = status(fixture!("statuses_sent_biz_opaque_callback_data.json"));
    assert_eq!(s.biz_opaque_callback_data.as_deref(), Some("some data"));

    for (body, code) in [
        (fixture!("statuses_failed.json"), 131049),
        (fixture!("statuses_failed_130472.json"), 130472),
        (fixture!("statuses_failed_131026.json"), 131026),
    ] {
        let s = status(body);
        assert_eq!(s.status, StatusKind::Failed);
        assert_eq!(s.errors[0].code, code);
        assert!(s.errors[0].explanation().is_some());
    }
}

#[test]
fn statuses_to_bsuid_recipients_are_keyed_on_the_bsuid() {
    for body in [
        fixture!("statuses_delivered_bsuid.json"),
        fixture!("statuses_delivered_bsuid_no_phone.json"),
    ] {
        let s = status(body);
        assert_eq!(
            s.recipient_user_id.as_deref(),
            Some("US.13491208655302741918")
        );
        // A reply Baton sent, so that the status is stored.
        let ours = body.replacen(
            r#""status": "delivered""#,
            r#""status": "delivered", "biz_opaque_callback_data": "baton|ho_0|reply#1""#,
            1,
        );
        let batch = build_batch(Bytes::from(ours), 1, BatchOrigin::Webhook);
        assert_eq!(
            batch.statuses[0].conversation.customer,
            "US.13491208655302741918"
        );
        assert_eq!(batch.statuses[0].rank, StatusKind::Delivered.rank());
    }
    let s = status(fixture!("statuses_delivered_bsuid_no_phone.json"));
    assert_eq!(s.recipient_id, None);
}

#[test]
fn value_level_errors_are_kept_on_the_delivery() {
    let body = fixture!("errors.json");
    let p = parse(body);
    assert_eq!(p.errors[0].code, 130429);
    assert_eq!(p.errors[0].title.as_deref(), Some("Rate limit hit"));
    let batch = build_batch(Bytes::from_static(body.as_bytes()), 1, BatchOrigin::Webhook);
    assert_eq!(batch.delivery.errors, p.errors);
    assert!(batch.messages.is_empty() && batch.statuses.is_empty());
}

#[test]
fn status_ranks_only_move_forward_and_failed_is_terminal() {
    use StatusKind::*;
    let order = [
        Other("deleted".into()),
        Sent,
        Delivered,
        Read,
        Played,
        Failed,
    ];
    for pair in order.windows(2) {
        assert!(pair[0].rank() < pair[1].rank(), "{pair:?}");
    }
    assert_eq!(StatusKind::parse("warning"), Other("warning".into()));
}

#[test]
fn unknown_types_and_fields_never_fail_and_keep_raw_json() {
    let raw = r#"{"from":"1","id":"wamid.new","timestamp":1700000000,"type":"hologram",
                 "hologram":{"depth":3},"brand_new_field":[1,2,3],
                 "context":{"id":"wamid.x","future":"yes"}}"#;
    let m: InboundMessage = serde_json::from_str(raw).unwrap();
    assert_eq!(
        m.content,
        Content::Unknown {
            kind: "hologram".into()
        }
    );
    assert_eq!(
        m.timestamp, 1_700_000_000,
        "numeric timestamps are accepted too"
    );
    let s: Status =
        serde_json::from_str(r#"{"id":"w","status":"deleted","timestamp":"5","x":{}}"#).unwrap();
    assert_eq!(s.status, StatusKind::Other("deleted".into()));
    let welcome: InboundMessage =
        serde_json::from_str(r#"{"from":"1","id":"w","timestamp":"1","type":"request_welcome"}"#)
            .unwrap();
    assert_eq!(welcome.content, Content::RequestWelcome);
}
