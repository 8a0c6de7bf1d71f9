//! `CartActor`: one per customer with an open cart (registry name `cart:{customer}` after the
//! namespace), started on first use under `supervisor:carts` and stopped (passivated) after
//! [`super::RuntimeConfig::cart_idle_timeout`] without a message.
//!
//! The actor owns the cart's rules (published listings only, 1 to 8 items, a checkout needs
//! items and a window that is not over) and runs one command of its customer at a time, so a
//! checkout racing an add answers with exactly the listings its payment holds.
//!
//! The store stays the source of truth and the actor keeps no copy of the items: each command
//! reads the cart, decides, and writes through. Other writers touch `cart_items` without
//! asking the actor (an unpublished or deleted listing leaves every cart; a succeeded
//! payment empties its customer's cart in the payment's transaction), so a cached copy would
//! go stale; one indexed read per command is cheaper than invalidating it. A crash loses
//! nothing, and a restarted or re-spawned actor needs no recovery.

use std::sync::Arc;

use engine::{CustomerId, ListingId, Location, PaymentId, Stop, TimeWindow};
use ractor::concurrency::JoinHandle;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef, MessagingErr, RpcReplyPort};
use serde::Serialize;
use uuid::Uuid;

use super::ctx::Ctx;
use super::supervisor::ChildSpec;
use super::Runtime;
use crate::store::{CartListing, NewPayment, StoreError};

/// Listings a cart holds at most (CONTRACT 4).
pub const MAX_ITEMS: usize = engine::route::MAX_LISTINGS;

/// Currency of every payment (the gateway simulator's).
pub const CURRENCY: &str = "USD";

/// Why a cart command was refused.
#[derive(Debug, thiserror::Error)]
pub enum CartError {
    /// No such listing, or it is not published.
    #[error("listing not found")]
    ListingNotFound,
    /// The cart already holds [`MAX_ITEMS`] listings.
    #[error("a cart holds at most {MAX_ITEMS} listings")]
    Full,
    /// The listing is not in the cart.
    #[error("cart item not found")]
    NotInCart,
    /// Checkout of an empty cart.
    #[error("the cart is empty")]
    Empty,
    /// Well-formed but unusable (a window that is over, a listing without a valid location).
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error("store error")]
    Store(#[source] StoreError),
    /// The cart's actor did not answer (restarting, or the runtime is stopping).
    #[error("cart unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for CartError {
    fn from(err: StoreError) -> Self {
        CartError::Store(err)
    }
}

/// A cart as the API shows it: `{"items": [listing...], "total_cents": n}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CartView {
    /// The listings, in cart order.
    pub items: Vec<CartListing>,
    /// Sum of their prices.
    pub total_cents: i64,
}

impl CartView {
    fn of(items: Vec<CartListing>) -> Self {
        let total_cents = items.iter().map(|l| l.price_cents).sum();
        Self { items, total_cents }
    }
}

/// What [`Runtime::cart_add`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Added {
    /// `false` when the listing was already in the cart (nothing changed).
    pub added: bool,
    /// The cart after the command.
    pub cart: CartView,
}

/// A checked-out cart: the `pending` payment [`Runtime::checkout`] stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkout {
    /// The payment to pay with `POST /payments`.
    pub payment_id: PaymentId,
    /// What it costs.
    pub amount_cents: i64,
    /// The listings it pays for, in cart order.
    pub listings: Vec<Stop>,
}

/// Messages of a [`CartActor`].
pub enum CartMsg {
    /// The cart.
    Get(RpcReplyPort<Result<CartView, CartError>>),
    /// Adds a published listing.
    Add(ListingId, RpcReplyPort<Result<Added, CartError>>),
    /// Removes a listing.
    Remove(ListingId, RpcReplyPort<Result<CartView, CartError>>),
    /// Checks the cart out for a window: a `pending` payment.
    Checkout(TimeWindow, RpcReplyPort<Result<Checkout, CartError>>),
    /// The idle timer armed after message `n` ran out (ignored if another message came since).
    Idle(u64),
    /// Fault injection for tests: panics inside the handler.
    #[doc(hidden)]
    Crash,
}

/// Start-up arguments of a cart actor.
pub struct CartArgs {
    pub(crate) ctx: Arc<Ctx>,
    /// Whose cart.
    pub customer: CustomerId,
}

/// The cart actor (stateless; see [`CartState`]).
pub struct CartActor;

/// A cart actor's state: whose cart, and the idle timer.
pub struct CartState {
    ctx: Arc<Ctx>,
    customer: CustomerId,
    /// Messages handled so far (the idle timer's generation).
    handled: u64,
    idle_timer: Option<JoinHandle<Result<(), MessagingErr<CartMsg>>>>,
}

impl CartState {
    /// (Re)arms the idle timer after a message.
    fn touch(&mut self, myself: &ActorRef<CartMsg>) {
        self.handled += 1;
        if let Some(timer) = self.idle_timer.take() {
            timer.abort();
        }
        let n = self.handled;
        self.idle_timer =
            Some(myself.send_after(self.ctx.config.cart_idle_timeout, move || CartMsg::Idle(n)));
    }

    async fn view(&self) -> Result<CartView, CartError> {
        Ok(CartView::of(
            self.ctx.store.cart_items(self.customer).await?,
        ))
    }

    async fn add(&self, listing: ListingId) -> Result<Added, CartError> {
        let store = &self.ctx.store;
        let listing = store
            .cart_listing(listing)
            .await?
            .filter(CartListing::is_published)
            .ok_or(CartError::ListingNotFound)?;
        let mut items = store.cart_items(self.customer).await?;
        if items.iter().any(|l| l.id == listing.id) {
            return Ok(Added {
                added: false,
                cart: CartView::of(items),
            });
        }
        if items.len() >= MAX_ITEMS {
            return Err(CartError::Full);
        }
        let added = store.add_cart_item(self.customer, listing.id).await?;
        if added {
            items.push(listing);
        }
        Ok(Added {
            added,
            cart: CartView::of(items),
        })
    }

    async fn remove(&self, listing: ListingId) -> Result<CartView, CartError> {
        if !self
            .ctx
            .store
            .remove_cart_item(self.customer, listing)
            .await?
        {
            return Err(CartError::NotInCart);
        }
        self.view().await
    }

    async fn checkout(&self, window: TimeWindow) -> Result<Checkout, CartError> {
        if window.end() <= self.ctx.config.clock.now() {
            return Err(CartError::Invalid("window is in the past".into()));
        }
        let items = self.ctx.store.cart_items(self.customer).await?;
        if items.is_empty() {
            return Err(CartError::Empty);
        }
        let listings = items
            .iter()
            .map(|l| {
                Location::new(l.location.lat, l.location.lng)
                    .map(|location| Stop { id: l.id, location })
                    .map_err(|e| CartError::Invalid(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let payment = NewPayment {
            id: PaymentId(Uuid::now_v7()),
            customer_id: self.customer,
            amount_cents: items.iter().map(|l| l.price_cents).sum(),
            currency: CURRENCY.to_owned(),
            window,
            listings,
        };
        self.ctx.store.create_payment(&payment).await?;
        Ok(Checkout {
            payment_id: payment.id,
            amount_cents: payment.amount_cents,
            listings: payment.listings,
        })
    }
}

impl Actor for CartActor {
    type Msg = CartMsg;
    type State = CartState;
    type Arguments = CartArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<CartMsg>,
        args: CartArgs,
    ) -> Result<CartState, ActorProcessingErr> {
        let mut state = CartState {
            ctx: args.ctx,
            customer: args.customer,
            handled: 0,
            idle_timer: None,
        };
        state.touch(&myself);
        Ok(state)
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<CartMsg>,
        state: &mut CartState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(timer) = state.idle_timer.take() {
            timer.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<CartMsg>,
        message: CartMsg,
        state: &mut CartState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            CartMsg::Idle(n) => {
                if n == state.handled {
                    myself.stop(Some("passivated".into()));
                }
                return Ok(());
            }
            CartMsg::Get(reply) => {
                let _ = reply.send(state.view().await);
            }
            CartMsg::Add(listing, reply) => {
                let _ = reply.send(state.add(listing).await);
            }
            CartMsg::Remove(listing, reply) => {
                let _ = reply.send(state.remove(listing).await);
            }
            CartMsg::Checkout(window, reply) => {
                let _ = reply.send(state.checkout(window).await);
            }
            CartMsg::Crash => panic!("injected cart failure"),
        }
        state.touch(&myself);
        Ok(())
    }
}

impl Runtime {
    /// The customer's cart.
    ///
    /// # Errors
    /// [`CartError::Store`], [`CartError::Unavailable`].
    pub async fn cart(&self, customer: CustomerId) -> Result<CartView, CartError> {
        self.call_cart(customer, CartMsg::Get).await
    }

    /// Adds a published listing to the customer's cart (nothing changes when it is in it).
    ///
    /// # Errors
    /// [`CartError::ListingNotFound`] (unknown, deleted or not published), [`CartError::Full`],
    /// store or actor failures.
    pub async fn cart_add(
        &self,
        customer: CustomerId,
        listing: ListingId,
    ) -> Result<Added, CartError> {
        self.call_cart(customer, |reply| CartMsg::Add(listing, reply))
            .await
    }

    /// Removes a listing from the customer's cart.
    ///
    /// # Errors
    /// [`CartError::NotInCart`], store or actor failures.
    pub async fn cart_remove(
        &self,
        customer: CustomerId,
        listing: ListingId,
    ) -> Result<CartView, CartError> {
        self.call_cart(customer, |reply| CartMsg::Remove(listing, reply))
            .await
    }

    /// Checks the customer's cart out for `window`: stores a `pending` payment for exactly the
    /// listings the cart holds now (the cart itself is emptied when the payment succeeds).
    ///
    /// # Errors
    /// [`CartError::Empty`], [`CartError::Invalid`] for a window that is over, store or actor
    /// failures.
    pub async fn checkout(
        &self,
        customer: CustomerId,
        window: TimeWindow,
    ) -> Result<Checkout, CartError> {
        self.call_cart(customer, |reply| CartMsg::Checkout(window, reply))
            .await
    }

    /// Whether the customer's cart actor runs (it is passivated after the idle timeout).
    #[must_use]
    pub fn cart_running(&self, customer: CustomerId) -> bool {
        self.core.ctx.cart(customer).is_some()
    }

    /// Fault injection for tests: makes the customer's cart actor panic.
    #[doc(hidden)]
    pub fn crash_cart(&self, customer: CustomerId) -> bool {
        self.core
            .ctx
            .cart(customer)
            .is_some_and(|c| c.cast(CartMsg::Crash).is_ok())
    }

    /// Calls the customer's cart actor, starting it when it does not run. A message the actor
    /// never handled (it was passivated or failed in between) is sent again to its successor;
    /// a call that times out is not, since it may still be running.
    async fn call_cart<R: Send + 'static>(
        &self,
        customer: CustomerId,
        build: impl Fn(RpcReplyPort<Result<R, CartError>>) -> CartMsg,
    ) -> Result<R, CartError> {
        let core = &self.core;
        let timeout = core.ctx.config.call_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut delay = std::time::Duration::from_millis(1);
        loop {
            match core.ctx.cart(customer) {
                Some(actor) => match actor.call(&build, Some(timeout)).await {
                    Ok(CallResult::Success(result)) => return result,
                    Ok(CallResult::Timeout) => {
                        return Err(CartError::Unavailable("the cart did not answer".into()))
                    }
                    Ok(CallResult::SenderError) | Err(_) => {}
                },
                None => {
                    if core
                        .start_child(&core.tree.carts, ChildSpec::Cart(customer))
                        .await
                        .is_ok()
                        && core.ctx.cart(customer).is_some()
                    {
                        continue;
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(CartError::Unavailable("the cart did not start".into()));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(std::time::Duration::from_millis(50));
        }
    }
}
